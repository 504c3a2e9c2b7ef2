"""Train the small MNIST classifier shipped in scorefield/metrics/_bundled (issue 13).

    PYTHONPATH=src python scripts/train_mnist_classifier.py

Trains a ReLU MLP 784 -> 256 -> 64 -> 10 (Adam, cross-entropy, seed 0) on the bundled
digits except the last 100 of each label, which are held out. Each training digit is also
shown averaged down to 14x14 and 7x7 and repeated back up to 28x28, so that runs on
downsampled digits are read too. Writes the weights and the held-out accuracy as a plain
.npz and puts its SHA-256 into scorefield/metrics/_classifier.py.
"""

import hashlib
import io
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scorefield.data._pixels import downsample  # noqa: E402
from scorefield.metrics._classifier import WEIGHTS, MnistClassifier, held_out_split, upsample_to_28  # noqa: E402


def augmented(x):
    img = x.reshape(-1, 28, 28)
    out = [x]
    for size in (14, 7):
        out.append(upsample_to_28(downsample(img, size).reshape(len(x), -1), (1, size, size)))
    return np.concatenate(out)


def main(steps: int = 3000, batch: int = 256, seed: int = 0):
    xtr, ytr, xte, yte = held_out_split()
    xa, ya = augmented(xtr), np.tile(ytr, 3)
    key = jax.random.PRNGKey(seed)
    sizes = [784, 256, 64, 10]
    params = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b)))

    def logits(p, x):
        for w, b in p[:-1]:
            x = jax.nn.relu(x @ w + b)
        return x @ p[-1][0] + p[-1][1]

    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits(p, x), y).mean() + 1e-4 * sum(
            jnp.sum(w**2) for w, _ in p)

    opt = optax.adam(optax.cosine_decay_schedule(2e-3, steps))
    state = opt.init(params)
    xa, ya = jnp.asarray(xa), jnp.asarray(ya)

    @jax.jit
    def step(p, s, k):
        k1, k2 = jax.random.split(k)
        idx = jax.random.randint(k1, (batch,), 0, xa.shape[0])
        x = xa[idx]
        # small random shifts of up to 2 pixels
        dx, dy = jax.random.randint(k2, (2,), -2, 3)
        x = jnp.roll(x.reshape(-1, 28, 28), (dy, dx), axis=(1, 2)).reshape(-1, 784)
        g = jax.grad(loss)(p, x, ya[idx])
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    for t in range(steps):
        key, k = jax.random.split(key)
        params, state = step(params, state, k)
    arrays = {}
    for i, (w, b) in enumerate(params):
        arrays[f"w{i}"] = np.asarray(w, np.float32)
        arrays[f"b{i}"] = np.asarray(b, np.float32)
    arrays["held_out_accuracy"] = np.float32(0.0)
    acc = float(np.mean(MnistClassifier(arrays).predict(xte) == yte))
    arrays["held_out_accuracy"] = np.float32(acc)
    for size in (14, 7):
        xs = upsample_to_28(downsample(xte.reshape(-1, 28, 28), size).reshape(len(xte), -1), (1, size, size))
        arrays[f"held_out_accuracy_{size}"] = np.float32(np.mean(MnistClassifier(arrays).predict(xs) == yte))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    out = ROOT / "src" / "scorefield" / "metrics" / "_bundled" / WEIGHTS
    out.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    mod = ROOT / "src" / "scorefield" / "metrics" / "_classifier.py"
    mod.write_text(re.sub(r'SHA256 = "[^"]*"', f'SHA256 = "{digest}"', mod.read_text()))
    print(f"held-out accuracy {acc:.4f} (28x28), {float(arrays['held_out_accuracy_14']):.4f} (14x14), "
          f"{float(arrays['held_out_accuracy_7']):.4f} (7x7) on {len(yte)} digits; wrote {out} ({len(data)} bytes, "
          f"sha256 {digest})")


if __name__ == "__main__":
    main()

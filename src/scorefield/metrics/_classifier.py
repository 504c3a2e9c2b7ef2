"""The project's small MNIST classifier, for image metrics (issue 13): its penultimate
features give a Frechet distance between digit sets, its predictions the fraction of
conditional samples read as the label asked for.

The weights ship as a plain .npz (no pickle) whose SHA-256 is checked on loading; they
are made by scripts/train_mnist_classifier.py from the bundled digits: 400 per label for
training, the last 100 per label held out; the held-out accuracy is stored with them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources

import numpy as np

from .._errors import InputError, ScorefieldError

WEIGHTS = "mnist_classifier.npz"
SHA256 = "1b92c6055ea09115b64d0db35be8726734e07c9a940c9e44567e9b8c2d833af9"
HELD_OUT_PER_LABEL = 100  # the last 100 digits of each label in the bundle


def upsample_to_28(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Grey images (N, H*W) of a side dividing 28 as (N, 784) by pixel repetition."""
    c, h, w = shape
    if c != 1 or h != w or 28 % h:
        raise InputError(f"the MNIST classifier reads grey square digits of a side dividing 28; these images are "
                         f"{c}x{h}x{w}")
    f = 28 // h
    img = np.asarray(x, np.float32).reshape(-1, h, w)
    return np.repeat(np.repeat(img, f, axis=1), f, axis=2).reshape(-1, 784)


class MnistClassifier:
    """A ReLU MLP 784 -> 256 -> 64 -> 10 on intensities in [0, 1]."""

    def __init__(self, arrays: dict):
        self.layers = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(3)]
        self.held_out_accuracy = float(arrays["held_out_accuracy"])

    def features(self, x: np.ndarray) -> np.ndarray:
        """Penultimate features (N, 64) of digits (N, 784)."""
        h = np.asarray(x, np.float32)
        for w, b in self.layers[:-1]:
            h = np.maximum(h @ w + b, 0.0)
        return h

    def logits(self, x: np.ndarray) -> np.ndarray:
        w, b = self.layers[-1]
        return self.features(x) @ w + b

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Labels (N,) int32 of digits (N, 784)."""
        return np.argmax(self.logits(x), axis=1).astype(np.int32)


@functools.cache
def load_classifier() -> MnistClassifier:
    """The shipped classifier; ScorefieldError if its file does not match its checksum."""
    ref = importlib.resources.files("scorefield.metrics") / "_bundled" / WEIGHTS
    data = ref.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise ScorefieldError(f"the bundled MNIST classifier {WEIGHTS} is damaged (SHA-256 {digest[:12]}..., expected "
                              f"{SHA256[:12]}...); reinstall scorefield or rerun scripts/train_mnist_classifier.py")
    import io

    buffer = io.BytesIO(data)  # the bytes whose checksum was just verified
    with np.load(buffer, allow_pickle=False) as z:
        return MnistClassifier({k: z[k] for k in z.files})


def held_out_split():
    """(train images, train labels, held-out images, held-out labels) of the bundle, (N, 784) in [0, 1]."""
    from ..data import mnist_bundle

    images, labels = mnist_bundle()
    x = images.reshape(-1, 784).astype(np.float32) / 255.0
    held = np.zeros(len(labels), bool)
    for label in range(10):
        rows = np.flatnonzero(labels == label)
        held[rows[-HELD_OUT_PER_LABEL:]] = True
    return x[~held], labels[~held].astype(np.int32), x[held], labels[held].astype(np.int32)

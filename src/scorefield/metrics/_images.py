"""Quality of generated images in pixel space (issue 13): Frechet distance in the shipped
classifier's penultimate features beside its floor, the fraction of conditional samples
read as the label asked for, and a nearest-neighbour memorisation check."""

from __future__ import annotations

import numpy as np

from .._errors import InputError
from ._classifier import load_classifier, upsample_to_28

NEAR_COPY = 0.5  # a sample closer than this fraction of the typical training-digit spacing


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) of the Gaussians fitted to two feature
    sets (N1, F), (N2, F); the trace of the square root from the eigenvalues of
    C1^(1/2) C2 C1^(1/2) (symmetric, so numpy's eigh suffices)."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    m1, m2 = f1.mean(0), f2.mean(0)
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(c1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r1 @ c2 @ r1)
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * np.sum(np.sqrt(np.clip(ev, 0, None))))


def nearest_neighbours(a: np.ndarray, b: np.ndarray, *, exclude_self: bool = False,
                       block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The nearest row of `b` (M, D) to each row of `a` (N, D), in Euclidean distance.

    Arguments:
        a, b: points in the same units (e.g. images in [0, 1], flattened).
        exclude_self: `a` is `b` (or its first rows): a row is not its own neighbour.
    Returns:
        (index (N,) int64 into `b`, distance (N,) float64, in the units of the points).
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    bb = np.sum(b * b, axis=1)
    dist = np.empty(len(a), np.float64)
    index = np.empty(len(a), np.int64)
    for i in range(0, len(a), block):
        x = a[i:i + block]
        d2 = np.sum(x * x, axis=1)[:, None] + bb[None, :] - 2.0 * x @ b.T
        if exclude_self:
            d2[np.arange(len(x)), np.arange(i, i + len(x))] = np.inf
        j = np.argmin(d2, axis=1)
        index[i:i + block] = j
        dist[i:i + block] = np.sqrt(np.clip(d2[np.arange(len(x)), j], 0, None))
    return index, dist


def _nearest(a: np.ndarray, b: np.ndarray, *, exclude_self: bool = False, block: int = 512) -> np.ndarray:
    """Euclidean distance of each row of `a` to its nearest row of `b`."""
    return nearest_neighbours(a, b, exclude_self=exclude_self, block=block)[1]


def data_spacing(real: np.ndarray, rng: np.random.Generator, max_reference: int = 2500) -> float:
    """The data's own spacing: the median distance of a real image (at most `max_reference`
    of them, a permutation drawn from `rng`) to its nearest other one. A sample closer than
    NEAR_COPY times this to a training image counts as a near-copy."""
    ref = real[rng.permutation(len(real))[:max_reference]]
    return float(np.median(_nearest(ref, ref, exclude_self=True)))


def image_report(samples: np.ndarray, dataset, *, label: int | None = None, seed: int = 0,
                 max_reference: int = 2500) -> dict:
    """Image metrics of `samples` (N, C*H*W) in [0, 1] against the image `dataset`.

    Returns a dict: `frechet` (samples vs real digits in the classifier's penultimate
    features) and `frechet_floor` (two disjoint halves of real digits, each of the samples'
    size, capped at half the data), `classifier_accuracy` (held-out, as shipped),
    `label_accuracy` (fraction read as `label`, when one is given or the data hold one
    label only), `label_histogram` (fraction read as each label), `nn_distance_median`
    (pixel-space distance to the nearest training image), `nn_distance_floor` (the same
    for real images to the other training images) and `memorised_fraction` (samples
    closer to a training image than NEAR_COPY times that floor).
    """
    shape = dataset.image_shape
    if shape is None:
        raise InputError(f"data {dataset.spec} are not images in pixel space; image metrics need mnist-digits, "
                         "mnist-digits-idx:... or image-folder:...")
    x = np.asarray(samples, np.float32)
    real = dataset.points
    labels = dataset.labels
    rng = np.random.default_rng(seed)
    out: dict = {"n_samples": int(len(x))}
    # memorisation: distance to the nearest training image, against the data's own spacing
    spacing = data_spacing(real, rng, max_reference)
    nn = _nearest(x, real)
    out.update(nn_distance_median=float(np.median(nn)), nn_distance_floor=spacing,
               memorised_fraction=float(np.mean(nn < NEAR_COPY * spacing)), near_copy_threshold=NEAR_COPY * spacing)
    try:
        f_real = upsample_to_28(real, shape)
        f_x = upsample_to_28(x, shape)
    except InputError:
        return out  # not digits the classifier reads: pixel-space measures only
    clf = load_classifier()
    out["classifier_accuracy"] = clf.held_out_accuracy
    n = min(len(x), len(real) // 2)
    perm = rng.permutation(len(real))
    fa, fb = clf.features(f_real[perm[:n]]), clf.features(f_real[perm[n:2 * n]])
    fx = clf.features(f_x[rng.permutation(len(x))[:n]]) if n < len(x) else clf.features(f_x)
    out.update(frechet=frechet_distance(fx, fa), frechet_floor=frechet_distance(fb, fa), frechet_n=int(n))
    pred = clf.predict(f_x)
    out["label_histogram"] = [float(v) for v in np.bincount(pred, minlength=10)[:10] / len(pred)]
    if label is None and labels is not None and np.unique(labels).size == 1:
        label = int(labels[0])
    if label is not None:
        out["label"] = int(label)
        out["label_accuracy"] = float(np.mean(pred == label))
        if labels is not None:
            own = f_real[labels == label]
            if len(own):
                out["label_accuracy_real"] = float(np.mean(clf.predict(own) == label))
    return out

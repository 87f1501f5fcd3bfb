#!/usr/bin/env python3
"""Reference for `chunkseg label --dilate r` / `--erode r` (docs/label-morphology.md).

    expand_shrink.py expand IN.npy OUT.npy R   skimage.segmentation.expand_labels(labels, distance=R)
    expand_shrink.py check-ties [CASES]        checks the tie rule docs/label-morphology.md reads from scipy (the least
                                               (d², x, y, z)) against expand_labels on random tie-heavy images
    expand_shrink.py shrink IN.npy OUT.npy R   a labelled voxel keeps its label only when no voxel of another value
                                               (background included) lies within Euclidean distance R (voxels);
                                               the volume's outside is not background

Both work on the array as given (2D or 3D), in voxel units. Run with Debian's /usr/bin/python3 (numpy, scipy,
scikit-image 0.19).
"""
import sys

import numpy as np
from scipy import ndimage
from skimage.segmentation import expand_labels


def shrink(labels, radius):
    """For each label, the distance from its voxels to the nearest voxel of any other value, by scipy's EDT:
    its features are the volume's voxels that are not the label; nothing outside the volume is a feature."""
    out = labels.copy()
    for value in np.unique(labels):
        if value == 0:
            continue
        inside = labels == value
        if inside.all():
            continue                                   # no other value anywhere: nothing erodes it
        distance = ndimage.distance_transform_edt(inside)
        out[inside & (distance <= radius)] = 0
    return out


def by_rule(labels, radius):
    """expand_labels by brute force with the tie rule: the least (squared distance, last axis, ..., axis 0)."""
    out = labels.copy()
    points = np.argwhere(labels != 0)
    if len(points) == 0:
        return out
    for p in np.argwhere(labels == 0):
        d2 = ((points - p) ** 2).sum(axis=1)
        if np.sqrt(float(d2.min())) > radius:
            continue
        nearest = min(map(tuple, points[d2 == d2.min()]), key=lambda q: tuple(reversed(q)))
        out[tuple(p)] = labels[nearest]
    return out


def check_ties(cases):
    rng = np.random.default_rng(1)
    for case in range(cases):
        ndim = int(rng.choice([2, 3]))
        shape = tuple(int(s) for s in rng.integers(3, 12 if ndim == 2 else 7, size=ndim))
        labels = np.zeros(shape, np.int32)
        for _ in range(int(rng.integers(1, 8))):
            labels[tuple(int(rng.integers(0, s)) for s in shape)] = int(rng.integers(1, 6))
        radius = float(rng.choice([1, 1.5, 2, 2.5, 3, 4, 10]))
        if not np.array_equal(expand_labels(labels, radius), by_rule(labels, radius)):
            raise SystemExit(f"case {case}: the rule differs from expand_labels (shape {shape}, radius {radius})")
    print(f"{cases} cases: expand_labels == least (d², x, y, z)")


def main():
    if sys.argv[1] == "check-ties":
        check_ties(int(sys.argv[2]) if len(sys.argv) > 2 else 400)
        return
    mode, source, target, radius = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    labels = np.load(source)
    if mode == "expand":
        result = expand_labels(labels, distance=radius)
    elif mode == "shrink":
        result = shrink(labels, radius)
    else:
        raise SystemExit(f"mode must be expand or shrink; got {mode}")
    np.save(target, result.astype(labels.dtype))
    print(int(np.count_nonzero(result != labels)))


if __name__ == "__main__":
    main()

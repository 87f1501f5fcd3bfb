#!/usr/bin/env python3
"""Reference for `chunkseg label --dilate r` / `--erode r` (docs/label-morphology.md).

    expand_shrink.py expand IN.npy OUT.npy R   skimage.segmentation.expand_labels(labels, distance=R)
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


def main():
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

#!/usr/bin/python3
"""Touching objects split the way scikit-image users split them: the reference `chunkseg bench split` times beside
ChunkSeg's Voronoi-Otsu labelling and its numpy transcription (voronoi_otsu.py).

Usage:
  split_reference.py IN.npy OUT.npy SPOT_SIGMA OUTLINE_SIGMA REPEATS
      IN: a 2D (y, x) or 3D (z, y, x) image, converted to float32 once before timing. The steps of clEsperanto's
      voronoi_otsu_labeling with scikit-image and SciPy:
        spot = skimage.filters.gaussian(image, SPOT_SIGMA); maxima = voxels equal to the maximum of their 3^n box
        (scipy.ndimage.maximum_filter, as detect_maxima_box with radius 0);
        mask = gaussian(image, OUTLINE_SIGMA) > skimage.filters.threshold_otsu(of it);
        seeds = maxima inside the mask, labelled 3^n-connected (scipy.ndimage.label);
        labels = skimage.segmentation.watershed(-spot, seeds, mask=mask): a seeded watershed of the inverted spot
        blur (the usual scikit-image route), not clEsperanto's Voronoi flood, so the regions differ near borders.
      Prints one JSON line: best wall time of REPEATS runs of those steps (compute only: no load, no save), the
      number of seeds and labels, the versions. OUT: the last run's labels (uint32).
"""
import json
import sys
import time

import numpy as np
import scipy
import skimage
from scipy import ndimage as ndi
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import watershed


def split(image, spot_sigma, outline_sigma):
    box = np.ones((3,) * image.ndim, bool)
    spot = gaussian(image, spot_sigma, mode="nearest", preserve_range=True)
    maxima = spot == ndi.maximum_filter(spot, footprint=box, mode="nearest")
    outline = gaussian(image, outline_sigma, mode="nearest", preserve_range=True)
    mask = outline > threshold_otsu(outline)
    seeds, count = ndi.label(maxima & mask, structure=box)
    return watershed(-spot, seeds, mask=mask), count


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    image = np.load(argv[0]).astype(np.float32)
    spot_sigma, outline_sigma, repeats = float(argv[2]), float(argv[3]), max(1, int(argv[4]))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        labels, seeds = split(image, spot_sigma, outline_sigma)
        best = min(best, time.perf_counter() - start)
    np.save(argv[1], labels.astype(np.uint32))
    print(json.dumps({"seconds": best, "seeds": int(seeds), "labels": int(labels.max()),
                      "skimage": skimage.__version__, "scipy": scipy.__version__, "numpy": np.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Touching objects split the way scikit-image users split them: the references `chunkseg bench split` times beside
ChunkSeg's Voronoi-Otsu labelling and its distance split (and their numpy transcriptions, voronoi_otsu.py and
distance_split.py).

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

  split_reference.py --distance MASK.npy OUT.npy MIN_DISTANCE REPEATS
      MASK: a 2D (y, x) or 3D (z, y, x) array, non-zero = foreground, isotropic voxels. The binary watershed as
      scikit-image's gallery writes it (the route beside `label --split distance`):
        distance = scipy.ndimage.distance_transform_edt(mask);
        seeds = skimage.feature.peak_local_max(distance, footprint = a box MIN_DISTANCE voxels either side per axis
        (z,y,x or y,x; as ChunkSeg's window), min_distance = the smallest of them, labels = the mask's 3^n-connected
        components, exclude_border=False), each peak its own marker;
        labels = skimage.segmentation.watershed(-distance, markers, mask=mask) (its default connectivity).
      Prints one JSON line as above (compute only). OUT: the last run's labels (uint32).
"""
import json
import sys
import time

import numpy as np
import scipy
import skimage
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
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


def distance_split(mask, window):
    foreground = mask != 0
    box = np.ones((3,) * mask.ndim, bool)
    distance = ndi.distance_transform_edt(foreground)
    components, _ = ndi.label(foreground, structure=box)
    peaks = peak_local_max(distance, min_distance=min(window), footprint=np.ones([2 * w + 1 for w in window], bool),
                           labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground), len(peaks)


def main(argv):
    distance = argv[:1] == ["--distance"]
    if distance:
        argv = argv[1:]
    if len(argv) != (4 if distance else 5):
        print(__doc__, file=sys.stderr)
        return 2
    if distance:
        image = np.load(argv[0])
        window = [int(w) for w in argv[2].split(",")]
        if len(window) != image.ndim:
            print(f"MIN_DISTANCE {argv[2]}: give one value per axis of the {image.ndim}D mask", file=sys.stderr)
            return 2
        run, repeats = (lambda: distance_split(image, window)), max(1, int(argv[3]))
    else:
        image = np.load(argv[0]).astype(np.float32)
        spot_sigma, outline_sigma, repeats = float(argv[2]), float(argv[3]), max(1, int(argv[4]))
        run = lambda: split(image, spot_sigma, outline_sigma)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        labels, seeds = run()
        best = min(best, time.perf_counter() - start)
    np.save(argv[1], labels.astype(np.uint32))
    print(json.dumps({"seconds": best, "seeds": int(seeds), "labels": int(labels.max()),
                      "skimage": skimage.__version__, "scipy": scipy.__version__, "numpy": np.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

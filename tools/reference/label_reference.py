#!/usr/bin/python3
"""Connected components with SciPy and scikit-image: the independent reference for `chunkseg label`.

Usage:
  label_reference.py label IN.npy OUTDIR CONN [--multilabel] [--fill-holes] [--min N] [--max N] [--exclude-border] [--intensity I.npy]
      IN: a binary (or, with --multilabel, label) image, 2D (y, x) or 3D (z, y, x). CONN: 1 = faces (4/6),
      ndim = all (8/26). Binary: scipy.ndimage.label with generate_binary_structure(ndim, CONN); multilabel:
      skimage.measure.label (touching different values stay apart); --fill-holes runs scipy.ndimage.binary_fill_holes
      on the binary image first. Then objects outside [min, max] voxels and,
      with --exclude-border, touching the image border are dropped and the rest renumbered 1..n in order
      (skimage.segmentation.relabel_sequential keeps the first-voxel order). Writes OUTDIR/labels.npy (uint32) and
      OUTDIR/objects.csv from skimage.measure.regionprops: label, area, centroid, bbox[, mean_intensity].
  label_reference.py batch LIST.txt CONN
      Every line of LIST is IN.npy OUT.npy: binary labels with scipy, no filters (for many small cases).
  label_reference.py time IN.npy CONN REPEATS
      Best wall time of scipy.ndimage.label on IN (binary), printed as JSON with versions.
"""
import sys
import json
import time
import numpy as np
from scipy import ndimage as ndi


def label(img, conn, multilabel):
    if multilabel:
        from skimage.measure import label as sklabel
        return sklabel(img, background=0, connectivity=conn).astype(np.uint32)
    lab, _ = ndi.label(img != 0, structure=ndi.generate_binary_structure(img.ndim, conn))
    return lab.astype(np.uint32)


def main():
    mode = sys.argv[1]
    if mode == "batch":
        conn = int(sys.argv[3])
        for line in open(sys.argv[2]):
            src, dst = line.split()
            img = np.load(src)
            c = img.ndim if conn > 1 else 1
            np.save(dst, label(img, c, multilabel=False))
        return
    if mode == "time":
        img = np.load(sys.argv[2]) != 0
        conn, repeats = int(sys.argv[3]), int(sys.argv[4])
        structure = ndi.generate_binary_structure(img.ndim, img.ndim if conn > 1 else 1)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            ndi.label(img, structure=structure)
            best = min(best, time.perf_counter() - t0)
        import scipy
        print(json.dumps({"seconds": best, "scipy": scipy.__version__, "numpy": np.__version__}))
        return

    args = sys.argv[2:]
    src, out, conn = args[0], args[1], int(args[2])
    opts = args[3:]
    multilabel = "--multilabel" in opts
    lo = int(opts[opts.index("--min") + 1]) if "--min" in opts else 0
    hi = int(opts[opts.index("--max") + 1]) if "--max" in opts else None
    img = np.load(src)
    if "--fill-holes" in opts:
        img = ndi.binary_fill_holes(img != 0).astype(np.uint8)
    conn = img.ndim if conn > 1 else 1
    lab = label(img, conn, multilabel)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= lo
    if hi is not None:
        keep &= sizes <= hi
    if "--exclude-border" in opts:
        border = np.zeros(img.shape, bool)
        for axis in range(img.ndim):
            idx = [slice(None)] * img.ndim
            idx[axis] = 0
            border[tuple(idx)] = True
            idx[axis] = -1
            border[tuple(idx)] = True
        keep[np.unique(lab[border])] = False
    keep[0] = False
    from skimage.segmentation import relabel_sequential
    lab = np.where(keep[lab], lab, 0).astype(np.uint32)
    lab = relabel_sequential(lab)[0].astype(np.uint32)
    np.save(f"{out}/labels.npy", lab)

    from skimage.measure import regionprops
    intensity = np.load(opts[opts.index("--intensity") + 1]) if "--intensity" in opts else None
    with open(f"{out}/objects.csv", "w") as f:
        for r in regionprops(lab, intensity_image=intensity):
            row = [r.label, r.area, *r.centroid, *r.bbox]
            if intensity is not None:
                row.append(r.mean_intensity)
            f.write(",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row) + "\n")


main()

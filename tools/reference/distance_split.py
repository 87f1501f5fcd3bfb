#!/usr/bin/python3
"""ChunkSeg's `--split distance` (the binary watershed), re-implemented with numpy from its definition.

Usage:
  distance_split.py MASK.npy OUT.npy --spacing z,y,x --min-distance z,y,x [--distance D2.npy]
      MASK: a 2D (y, x) or 3D (z, y, x) array, non-zero = foreground (one time point).
      --spacing: the voxel size (2D: "y,x"); --min-distance: the seeds' window in voxels per axis (2D: "y,x").
      OUT: uint64 keys, same shape: 0 background, else the key of the seed whose region the voxel is in
      (key = x * H * D + y * D + z + 1, Fortran order; 2D: D = 1). Prints one JSON line: seeds, objects,
      the iterations of each flood, the largest |D - scipy's distance_transform_edt| in micrometres, and the
      wall time of the split alone in seconds.
      --distance: also save D^2 (float64).
      --skimage: also save scikit-image's marker watershed of -D from the same seeds inside the mask
      (skimage.segmentation.watershed, a priority flood: ties are taken in queue order, so it is a yardstick
      for the split's quality, not its definition).

The definition (src/Kernels/Splitting/ExactDistance.cs and DistanceWatershed.cs have the argument; this file
implements the definition directly, without chunks, pruning or fronts):
  1. D^2(v) = min over background b of ((Tx(|dx|) + Ty(|dy|)) + Tz(|dz|)), Ta(d) = (d * sa) * (d * sa), float64,
     summed in that order; foreground without any background: +inf. Computed separably: every pass takes the
     minimum over every position of the line (float addition is monotone, so that is the minimum over all b).
  2. Seeds: foreground v whose (D^2, key) is the largest pair over the foreground voxels within the window
     (Chebyshev, per axis) that v's 26-connected (8 in 2D) foreground reaches inside the window.
  3. Two floods of synchronous iterations, box (26 / 8) neighbours on even iterations, diamond (6 / 4) on odd,
     stopping after the first iteration that labels nothing; an unlabelled foreground voxel takes the label of
     the labelled neighbour with the largest (D^2, label): in flood 1 only among neighbours u with
     D^2(u) >= D^2(v); in flood 2 (restarted at iteration 0 from flood 1's labels) among all.
"""
import itertools
import json
import sys
import time

import numpy as np
from scipy import ndimage as ndi


def squared_distance(mask, spacing):
    """Step 1 on a (z, y, x) mask."""
    fg = mask != 0
    out = np.where(fg, np.inf, 0.0)
    for axis in (2, 1, 0):                          # x, then y, then z: the order of the sum
        n = out.shape[axis]
        idx = np.arange(n, dtype=np.float64)
        terms = (idx * spacing[axis]) * (idx * spacing[axis])
        moved = np.moveaxis(out, axis, -1)
        best = np.full(moved.shape, np.inf)
        for r in range(-(n - 1), n):
            t = terms[abs(r)]
            shifted = np.full(moved.shape, np.inf)
            if r >= 0:
                shifted[..., r:] = moved[..., :n - r]
            else:
                shifted[..., :n + r] = moved[..., -r:]
            best = np.minimum(best, shifted + t)
        out = np.moveaxis(best, -1, axis)
    return out


def keys_of(shape):
    d, h, w = shape
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    return ((x.astype(np.uint64) * h + y) * d + z + 1).astype(np.uint64)


def neighbours(three_d, box):
    offsets = []
    for dz, dy, dx in itertools.product((-1, 0, 1), repeat=3):
        if (dz, dy, dx) == (0, 0, 0) or (not three_d and dz != 0):
            continue
        if not box and abs(dz) + abs(dy) + abs(dx) != 1:
            continue
        offsets.append((dz, dy, dx))
    return offsets


def shift(a, offset, fill):
    """b[p] = a[p + offset] (fill outside)."""
    b = np.full(a.shape, fill, dtype=a.dtype)
    src = tuple(slice(max(o, 0), s + min(o, 0)) for o, s in zip(offset, a.shape))
    dst = tuple(slice(max(-o, 0), s + min(-o, 0)) for o, s in zip(offset, a.shape))
    b[dst] = a[src]
    return b


def seeds(d2, keys, window, three_d):
    """Step 2."""
    fg = d2 > 0
    # Candidates: the largest pair among the direct neighbours (a seed must be; the window walk decides).
    cand = fg.copy()
    for off in neighbours(three_d, box=True):
        du, ku = shift(d2, off, 0.0), shift(keys, off, np.uint64(0))
        cand &= ~((du > d2) | ((du == d2) & (ku > keys)))
    out = np.zeros(d2.shape, dtype=np.uint64)
    D, H, W = d2.shape
    for v in zip(*np.nonzero(cand)):
        lo = [max(0, v[a] - window[a]) for a in range(3)]
        hi = [min(d2.shape[a] - 1, v[a] + window[a]) for a in range(3)]
        seen = {v}
        stack = [v]
        largest = True
        while stack and largest:
            p = stack.pop()
            for off in neighbours(three_d, box=True):
                q = tuple(p[a] + off[a] for a in range(3))
                if any(q[a] < lo[a] or q[a] > hi[a] for a in range(3)) or q in seen or d2[q] <= 0:
                    continue
                if d2[q] > d2[v] or (d2[q] == d2[v] and keys[q] > keys[v]):
                    largest = False
                    break
                seen.add(q)
                stack.append(q)
        if largest:
            out[v] = keys[v]
    return out


def flood(labels, d2, three_d, downhill):
    """Step 3, one flood; returns the iterations that labelled something."""
    fg = d2 > 0
    run = 0
    for it in itertools.count():
        best_h = np.full(d2.shape, -np.inf)
        best_l = np.zeros(d2.shape, dtype=np.uint64)
        for off in neighbours(three_d, box=(it % 2 == 0)):
            lu, hu = shift(labels, off, np.uint64(0)), shift(d2, off, -np.inf)
            ok = lu != 0
            if downhill:
                ok &= hu >= d2
            better = ok & ((hu > best_h) | ((hu == best_h) & (lu > best_l)))
            best_h = np.where(better, hu, best_h)
            best_l = np.where(better, lu, best_l)
        take = fg & (labels == 0) & (best_l != 0)
        if not take.any():
            return run
        labels[take] = best_l[take]
        run += 1


def main(argv):
    args = list(argv)

    def option(name):
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value

    spacing = [float(v) for v in option("--spacing").split(",")]
    window = [int(v) for v in option("--min-distance").split(",")]
    d2_path = option("--distance") if "--distance" in args else None
    skimage_path = option("--skimage") if "--skimage" in args else None
    mask_path, out_path = args
    mask = np.load(mask_path)
    three_d = mask.ndim == 3
    if not three_d:
        mask, spacing, window = mask[None], [1.0] + spacing, [0] + window
    start = time.perf_counter()
    d2 = squared_distance(mask, spacing)
    keys = keys_of(mask.shape)
    labels = seeds(d2, keys, window, three_d)
    n_seeds = int((labels != 0).sum())
    markers = labels.copy()
    downhill = flood(labels, d2, three_d, downhill=True)
    filling = flood(labels, d2, three_d, downhill=False)
    seconds = time.perf_counter() - start
    if (mask == 0).any():
        reference = ndi.distance_transform_edt(mask != 0, sampling=spacing)
        scipy_error = float(np.max(np.abs(np.sqrt(d2) - reference)))
    else:
        scipy_error = None
    if skimage_path:
        from skimage.segmentation import watershed
        conn = np.ones((3, 3, 3), dtype=bool) if three_d else np.pad(np.ones((1, 3, 3), dtype=bool), ((1, 1), (0, 0), (0, 0)))
        flooded = watershed(-np.sqrt(np.where(np.isinf(d2), np.finfo(np.float64).max, d2)), markers.astype(np.int64), connectivity=conn, mask=mask != 0)
        np.save(skimage_path, (flooded[0] if not three_d else flooded).astype(np.uint64))
    if not three_d:
        labels, d2 = labels[0], d2[0]
    np.save(out_path, labels)
    if d2_path:
        np.save(d2_path, d2)
    print(json.dumps({"seeds": n_seeds, "objects": int(len(np.unique(labels[labels != 0]))), "downhill_iterations": downhill,
                      "filling_iterations": filling, "scipy_max_abs_error_um": scipy_error, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])

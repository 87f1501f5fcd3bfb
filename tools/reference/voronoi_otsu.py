#!/usr/bin/python3
"""clEsperanto's voronoi_otsu_labeling, re-implemented with numpy/scipy from its OpenCL source.

Usage:
  voronoi_otsu.py IN.npy OUT.npy SPOT_SIGMA OUTLINE_SIGMA [--fma] [--otsu-trim]
      IN: a 2D (y, x) or 3D (z, y, x) image of any real dtype; it is converted to float32 first.
      SPOT_SIGMA, OUTLINE_SIGMA: scalars (clEsperanto passes the same sigma to x, y and z), or per axis as
      "z,y,x" ("y,x" in 2D): ChunkSeg's extension for anisotropic voxels, the per-axis sigmas clEsperanto's
      gaussian_blur itself takes.
      OUT: uint32 labels, same shape. Prints one JSON line: threshold, number of seeds, flood iterations, labels,
      and the wall time of the labelling alone in seconds (no load, no save; `chunkseg bench split` reports it).
      --fma: let each Gaussian tap's multiply-add be fused (as an OpenCL compiler may contract it).
      --otsu-trim: drop empty end bins before Otsu as scikit-image >= 0.19 does; without it an empty bin 255
      (the maximum can land in bin 254 through float32 rounding) makes Otsu pick bin 254 (NaN in argmax).
  voronoi_otsu.py IN.npy OUT.npy SPOT_SIGMA --foreground MASK.npy [--fma]
      ChunkSeg's `--split voronoi`: the foreground is given (MASK non-zero, e.g. thresholded probabilities)
      instead of found by Otsu on the outline blur; IN is the channel whose spot-blur maxima seed the flood.
      Steps 1, 2, 4 and 5 below as they are.
  voronoi_otsu.py IN.npy --otsu
      Step 3's threshold (with --otsu-trim) of the image itself, unblurred: ChunkSeg's `--threshold otsu`.
      Prints {"threshold": t}; the foreground is IN > float32(t).

What it follows, literally (docs/voronoi-otsu.md cites the source of every rule):
  pyclesperanto_prototype's _tier9/_voronoi_otsu_labeling.py and the kernels it runs:
  1. blur_spot = gaussian_blur(image, spot_sigma): separable, x pass then y then z, kernel size
     N = int(sigma * 8) made odd, radius (N - 1) // 2, weights exp(v*v / (-2 s s)) normalised by their
     float32 sum, clamp-to-edge borders, float32 throughout.
  2. spots = detect_maxima_box(blur_spot, radius 0): 3x3(x3) box, scanned x outer, y, z inner; the first
     position (in that scan) holding the neighbourhood maximum wins, so of equal neighbours the earliest
     scanned one is the maximum; neighbours with a negative coordinate are skipped, ones past the upper
     border read the clamped edge value.
  3. blur_outline = gaussian_blur(image, outline_sigma); segmentation = blur_outline > otsu, where otsu comes
     from a 256-bin GPU histogram (bin = trunc((v - min) * 255 / (max - min)), float32), per-row partial
     histograms summed as float32, scikit-image's Otsu formula on bin centres i * (max - min) / 255 + min.
  4. seeds = spots AND segmentation, labelled with 26 (8 in 2D) connectivity; labels are numbered in the
     order of each component's smallest pixel index x * H * D + y * D + z + 1 (Fortran order over (z, y, x)),
     held as float32.
  5. masked Voronoi: background -1, foreground 0, seeds their label; alternately (box first) a 0 voxel takes
     the largest positive label in its box (3^n - 1) or diamond (2n) neighbourhood; stop after the first pass
     that changes nothing; mask with the segmentation; uint32.
"""
import itertools
import json
import sys
import time

import numpy as np
from scipy import ndimage as ndi

F32 = np.float32


# ---------------------------------------------------------------- gaussian_blur

def sigma_to_kernel_size(sigma):
    """_tier0 sigma_to_kernel_size: int(sigma * 8), +1 when even."""
    n = int(float(sigma) * 8.0)
    if n % 2 == 0:
        n += 1
    return n


def _blur_axis(a, axis, sigma, fma):
    """One gaussian_blur_separable pass along `axis` (float32 in, float32 out)."""
    n_taps = sigma_to_kernel_size(sigma)
    c = (n_taps - 1) // 2
    s = F32(sigma)                      # the kernel argument is a float
    n = F32(F32(-2.0) * s) * s          # const float n = -2*s*s;
    size = a.shape[axis]
    res = np.zeros(a.shape, F32)
    hsum = F32(0)
    for v in range(-c, c + 1):
        q = F32(F32(v * v) / n)
        h = F32(np.exp(np.float64(q)))   # exp(float), taken as correctly rounded (open question in the doc)
        idx = np.clip(np.arange(size) + v, 0, size - 1)   # CLAMP_TO_EDGE
        x = np.take(a, idx, axis=axis)
        if fma:
            res = (np.float64(h) * x.astype(np.float64) + res.astype(np.float64)).astype(F32)
        else:
            res = res + h * x            # float32 multiply, then float32 add
        hsum = F32(hsum + h)
    return (res / hsum).astype(F32)


def gaussian_blur(img, sigma, fma=False):
    """execute_separable_kernel: x (last axis) first, then y, then z; sigma <= 0 on an axis = copy."""
    a = np.asarray(img, dtype=F32)
    sig = [float(sigma)] * a.ndim if np.isscalar(sigma) else [float(s) for s in sigma]  # per numpy axis
    for axis in range(a.ndim - 1, -1, -1):      # numpy axis -1 is OpenCL dim 0 (x)
        if sig[axis] > 0:
            a = _blur_axis(a, axis, sig[axis], fma)
    return a


# ---------------------------------------------------------------- detect_maxima_box (radius 0)

def detect_maxima_box(img):
    """detect_maxima_{2,3}d_x.cl after the border fix (pyclesperanto_prototype PR #187)."""
    a = np.asarray(img, dtype=F32)
    nd = a.ndim
    p = np.pad(a, 1, mode="edge")
    local_max = (a - F32(1)).astype(F32)
    is_center = np.ones(a.shape, bool)           # localMaxPos starts at pos
    # OpenCL loops: x outer, y, z inner; numpy axis k holds OpenCL dim nd-1-k.
    for offs_xyz in itertools.product((-1, 0, 1), repeat=nd):
        offs = offs_xyz[::-1]                       # per numpy axis
        sl = tuple(slice(1 + o, 1 + o + n) for o, n in zip(offs, a.shape))
        val = p[sl]
        valid = np.ones(a.shape, bool)
        for k, o in enumerate(offs):
            if o < 0:                               # skip coordinates < 0
                shape = [1] * nd
                shape[k] = a.shape[k]
                valid &= (np.arange(a.shape[k]) + o >= 0).reshape(shape)
        upd = valid & (val > local_max)
        local_max = np.where(upd, val, local_max)
        is_center = np.where(upd, all(o == 0 for o in offs), is_center)
    return is_center.astype(np.uint8)


# ---------------------------------------------------------------- threshold_otsu

def histogram_256(img):
    """_tier3 histogram with min/max given: per-row (y) partial uint histograms, float32, summed in y order."""
    a = np.asarray(img, dtype=F32)
    mn, mx = F32(a.min()), F32(a.max())
    rng = F32(mx - mn)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = ((a - mn).astype(F32) * F32(255)).astype(F32) / rng
    x = np.nan_to_num(x.astype(F32), nan=0.0, posinf=255.0)
    bins = np.clip(np.trunc(x), 0, 255).astype(np.int64)        # convert_uint_sat (rtz)
    rows = np.broadcast_to(np.arange(a.shape[-2]).reshape([-1, 1]), a.shape[-2:])
    rows = np.broadcast_to(rows, a.shape)
    partial = np.bincount((rows * 256 + bins).ravel(), minlength=a.shape[-2] * 256)
    partial = partial.reshape(a.shape[-2], 256).astype(F32)     # uint count -> float image
    counts = np.cumsum(partial, axis=0, dtype=F32)[-1]          # sum_z_projection: sequential float sum
    return counts, mn, mx


def threshold_otsu(img, trim=False):
    """_tier9 threshold_otsu: returns (threshold as float64, binary float32 0/1).

    trim=False: the prototype's in-file copy of scikit-image's Otsu, literally: an empty last bin makes
    variance12[254] NaN and np.argmax picks it. trim=True: scikit-image >= 0.19, which first drops empty bins
    at both ends of the histogram (open question 1 in docs/voronoi-otsu.md)."""
    a = np.asarray(img, dtype=F32)
    counts, mn, mx = histogram_256(a)
    rng = mx - mn                                        # numpy float32 scalar arithmetic
    bin_centers = np.arange(256) * rng / (255) + mn      # float64 (PR #162 adds the minimum)
    c = counts.astype(float)
    if trim and (c[0] == 0 or c[-1] == 0):
        cond = c > 0
        start, end = np.argmax(cond), cond.size - np.argmax(cond[::-1])
        c, bin_centers = c[start:end], bin_centers[start:end]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight1 = np.cumsum(c)
        weight2 = np.cumsum(c[::-1])[::-1]
        mean1 = np.cumsum(c * bin_centers) / weight1
        mean2 = (np.cumsum((c * bin_centers)[::-1]) / weight2[::-1])[::-1]
        variance12 = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    idx = np.argmax(variance12)
    threshold = float(bin_centers[:-1][idx])
    binary = (a > F32(threshold)).astype(F32)            # greater_constant; the constant travels as float32
    return threshold, binary


# ---------------------------------------------------------------- labelling and flooding

def connected_components_box(binary):
    """connected_components_labeling_box: float32 labels numbered by min(x*H*D + y*D + z + 1) per component."""
    b = np.asarray(binary) != 0
    lab_t, n = ndi.label(b.T, structure=np.ones((3,) * b.ndim, int))   # C order of b.T = Fortran order of b
    lab = lab_t.T
    out = np.zeros(b.shape, F32)
    if n == 0:
        return out
    flat = lab.ravel(order="F")
    first = np.zeros(n + 1, np.int64)
    vals, where = np.unique(flat, return_index=True)
    first[vals] = where
    key = (first[1:] + 1).astype(F32)                  # pixel index held in a float image
    _, rank = np.unique(key, return_inverse=True)      # relabel_sequential: sorted values -> 1..n
    table = np.concatenate([[0], rank + 1]).astype(F32)
    out = table[lab]
    return out


def masked_voronoi_labeling(binary, mask):
    """_tier5 masked_voronoi_labeling with the onlyzero_overwrite_maximum box/diamond kernels."""
    m = np.asarray(mask, dtype=F32)
    flip = ((m + F32(-1)).astype(F32) + connected_components_box(binary)).astype(F32)
    nd = m.ndim
    box = np.ones((3,) * nd, bool)
    diamond = ndi.generate_binary_structure(nd, 1)
    cur = flip
    it = 0
    while True:
        fp = box if it % 2 == 0 else diamond
        pos = np.where(cur > 0, cur, F32(0))
        mx = ndi.maximum_filter(pos, footprint=fp, mode="nearest")
        new = np.where(cur == 0, mx, cur).astype(F32)
        changed = bool(np.any(new != cur))
        cur = new
        it += 1
        if not changed:
            break
    return np.where(m != 0, cur, F32(0)).astype(F32), it


def voronoi_otsu_labeling(image, spot_sigma=2, outline_sigma=2, fma=False, otsu_trim=False, info=None):
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ValueError("2D (y, x) or 3D (z, y, x) only")
    for sigma in (spot_sigma, outline_sigma):
        if not np.isscalar(sigma) and len(sigma) != a.ndim:
            raise ValueError("one sigma, or one per axis")
    a = a.astype(F32)
    spots = detect_maxima_box(gaussian_blur(a, spot_sigma, fma))
    threshold, segmentation = threshold_otsu(gaussian_blur(a, outline_sigma, fma), otsu_trim)
    binary = ((spots != 0) & (segmentation != 0)).astype(np.uint8)
    labels, iterations = masked_voronoi_labeling(binary, segmentation)
    labels = np.where(segmentation != 0, labels, F32(0))
    if info is not None:
        info.update(threshold=threshold, seeds=int(binary.sum()), iterations=iterations)
    return labels.astype(np.uint32)


def seeded_voronoi_split(image, spot_sigma, foreground, fma=False, info=None):
    """Steps 1, 2, 4, 5 inside a given foreground (ChunkSeg's --split voronoi)."""
    a = np.asarray(image).astype(F32)
    segmentation = (np.asarray(foreground) != 0).astype(np.uint8)
    if segmentation.shape != a.shape:
        raise ValueError("the foreground has the image's shape")
    spots = detect_maxima_box(gaussian_blur(a, spot_sigma, fma))
    binary = ((spots != 0) & (segmentation != 0)).astype(np.uint8)
    labels, iterations = masked_voronoi_labeling(binary, segmentation)
    labels = np.where(segmentation != 0, labels, F32(0))
    if info is not None:
        info.update(seeds=int(binary.sum()), iterations=iterations)
    return labels.astype(np.uint32)


def main(argv):
    if "--otsu" in argv:
        args = [x for x in argv if not x.startswith("--")]
        threshold, _ = threshold_otsu(np.load(args[0]).astype(F32), trim=True)
        print(json.dumps({"threshold": threshold}))
        return 0
    foreground = None
    if "--foreground" in argv:
        at = argv.index("--foreground")
        foreground = np.load(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    args = [x for x in argv if not x.startswith("--")]
    if len(args) != (3 if foreground is not None else 4):
        print(__doc__, file=sys.stderr)
        return 2
    img = np.load(args[0])
    info = {}
    def sigma(text):
        parts = [float(p) for p in text.split(",")]
        return parts[0] if len(parts) == 1 else parts
    start = time.perf_counter()
    if foreground is not None:
        out = seeded_voronoi_split(img, sigma(args[2]), foreground, fma="--fma" in argv, info=info)
    else:
        out = voronoi_otsu_labeling(img, sigma(args[2]), sigma(args[3]), fma="--fma" in argv,
                                    otsu_trim="--otsu-trim" in argv, info=info)
    info["seconds"] = time.perf_counter() - start
    np.save(args[1], out)
    info["labels"] = int(out.max())
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

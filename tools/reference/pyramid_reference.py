#!/usr/bin/env python3
"""Reference for the pyramid downsampling kernels (src/Kernels/Pyramids/), one or more cases per run:

    pyramid_reference.py mean FZ,FY,FX IN.npy OUT.npy [FZ,FY,FX IN.npy OUT.npy ...]
        block mean with ragged edge blocks (the mean over the voxels present), in numpy from the definition:
        integers: block sums with np.add.reduceat in uint64, then the exact quotient rounded to nearest, ties to
        even, in integer arithmetic; float32: float64 sums in the order the kernel documents (rows of a block in
        z-then-y order starting from 0, then its columns left to right), one float64 division, then float32
    pyramid_reference.py skimage FZ,FY,FX IN.npy OUT.npy [FZ,FY,FX IN.npy OUT.npy ...]
        skimage.transform.downscale_local_mean (float64; only meaningful where the factor divides the shape, since
        scikit-image pads ragged blocks with zeros and still divides by the full block)
    pyramid_reference.py mode FZ,FY,FX IN.npy OUT.npy [FZ,FY,FX IN.npy OUT.npy ...]
        scipy.stats.mode of every block (ties to the smallest value): the blocks that are whole by reshaping the
        array to (oz, oy, ox, fz·fy·fx), the ragged edge blocks one by one

Inputs are 3D (z, y, x). Run with Debian's /usr/bin/python3 (numpy 1.24, scipy 1.10, scikit-image 0.19).
"""
import sys

import numpy as np


def block_sums(a, f):
    """Sums over [o·f, min((o+1)·f, n)) along every axis (reduceat at multiples of the factor)."""
    for axis, fa in enumerate(f):
        a = np.add.reduceat(a, np.arange(0, a.shape[axis], fa), axis=axis)
    return a


def mean(a, f):
    if a.dtype.kind == "u":
        sums = block_sums(a.astype(np.uint64), f)
        n = block_sums(np.ones(a.shape, np.uint64), f)
        q, r = np.divmod(sums, n)
        up = (2 * r > n) | ((2 * r == n) & (q % 2 == 1))
        return (q + up).astype(a.dtype)
    assert a.dtype == np.float32
    fz, fy, fx = f
    out_shape = tuple(-(-s // fa) for s, fa in zip(a.shape, f))
    a64 = a.astype(np.float64)
    acc = np.zeros(out_shape[:2] + (a.shape[2],))
    for dz in range(fz):                       # rows of a block: z outer, y inner
        for dy in range(fy):
            rows = a64[dz::fz, dy::fy, :]
            acc[:rows.shape[0], :rows.shape[1], :] += rows
    total = acc[:, :, 0::fx].copy()
    for dx in range(1, fx):                    # then its columns, left to right
        cols = acc[:, :, dx::fx]
        total[:, :, :cols.shape[2]] += cols
    n = block_sums(np.ones(a.shape, np.float64), f)
    return (total / n).astype(np.float32)


def mode(a, f):
    import scipy.stats                         # imported here: 1 s of start-up the mean cases don't need
    fz, fy, fx = f
    out = np.zeros(tuple(-(-s // fa) for s, fa in zip(a.shape, f)), a.dtype)
    wz, wy, wx = (s // fa for s, fa in zip(a.shape, f))
    whole = a[:wz * fz, :wy * fy, :wx * fx].reshape(wz, fz, wy, fy, wx, fx).transpose(0, 2, 4, 1, 3, 5).reshape(wz, wy, wx, -1)
    if whole.size:
        out[:wz, :wy, :wx] = scipy.stats.mode(whole, axis=-1, keepdims=False).mode
    for zo, yo, xo in np.ndindex(out.shape):
        if zo < wz and yo < wy and xo < wx:
            continue
        block = a[zo * fz:(zo + 1) * fz, yo * fy:(yo + 1) * fy, xo * fx:(xo + 1) * fx].ravel()
        out[zo, yo, xo] = scipy.stats.mode(block, keepdims=False).mode
    return out


def main(argv):
    if len(argv) < 4 or (len(argv) - 1) % 3 != 0 or argv[0] not in ("mean", "skimage", "mode"):
        sys.exit(__doc__)
    for factor, src, dst in zip(argv[1::3], argv[2::3], argv[3::3]):
        f = tuple(int(v) for v in factor.split(","))
        a = np.load(src)
        if argv[0] == "mean":
            out = mean(a, f)
        elif argv[0] == "skimage":
            from skimage.transform import downscale_local_mean
            out = downscale_local_mean(a, f)
        else:
            out = mode(a, f)
        np.save(dst, np.ascontiguousarray(out))


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/python3
"""ilastik's pixel features computed with VIGRA the way ilastik calls it (ILASTIK_RECIPE §3.2, §3.5), in
double-precision VIGRA arithmetic with fastfilters' structure-tensor semantics (gradient at 0.5 s',
tensor smoothed at s').

Usage: vigra_features.py INPUT.npy SPEC OUTPUT.npy [2d-data | axis-scales=fz,fy,fx | st=vigra]
(st=vigra: the structure tensor of an ilastik without fastfilters, gradient at s', smoothing at 0.5 s')
INPUT is a float32 (z, y, x) volume (or (y, x) with "2d-data"); SPEC is ChunkSeg's feature spec
("GaussianSmoothing:0.3,1.0;..." with optional "/2d" per scale). OUTPUT gets the feature matrix,
channels last, in ilastik's order. Prints the seconds spent inside VIGRA's filter calls (numpy's
conversions, sorting and stacking excluded, so the benchmark is VIGRA's own speed).
"""
import math, sys, time
import numpy as np
import vigra

VIGRA_ST = False      # st=vigra: ilastik's VIGRA fallback order of the structure tensor's scales
VIGRA_SECONDS = 0.0   # time inside VIGRA's filter calls only (not numpy's conversions, sorting, stacking)


def timed(fn, *args, **kwargs):
    global VIGRA_SECONDS
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    VIGRA_SECONDS += time.perf_counter() - start
    return result


KINDS = {"gaussiansmoothing", "laplacianofgaussian", "gaussiangradientmagnitude",
         "differenceofgaussians", "structuretensoreigenvalues", "hessianofgaussianeigenvalues"}


def parse(spec):
    entries = []
    for block in filter(None, (b.strip() for b in spec.split(";"))):
        kind, scales = block.split(":")
        kind = kind.strip().lower()
        assert kind in KINDS, kind
        for item in filter(None, (s.strip() for s in scales.split(","))):
            in2d = item.lower().endswith("/2d")
            entries.append((kind, float(item[:-3] if in2d else item), in2d))
    return entries


def scaled(s, f):
    return f * s if isinstance(s, float) else tuple(f * v for v in s)


def feature(kind, p, s):
    """One feature of a pre-smoothed image p at filter scale s, channels last (VIGRA returns that)."""
    f = vigra.filters
    if kind == "gaussiansmoothing":
        return timed(f.gaussianSmoothing, p, s, window_size=2.0)
    if kind == "laplacianofgaussian":
        return timed(f.laplacianOfGaussian, p, s, window_size=2.0)
    if kind == "gaussiangradientmagnitude":
        return timed(f.gaussianGradientMagnitude, p, s, window_size=2.0)
    if kind == "differenceofgaussians":
        return timed(f.gaussianSmoothing, p, s, window_size=2.0) - timed(f.gaussianSmoothing, p, scaled(s, 0.66), window_size=2.0)
    if kind == "structuretensoreigenvalues":
        if VIGRA_ST:
            return timed(f.structureTensorEigenvalues, p, s, scaled(s, 0.5), window_size=2.0)
        return timed(f.structureTensorEigenvalues, p, scaled(s, 0.5), s, window_size=2.0)
    return timed(f.hessianOfGaussianEigenvalues, p, s, window_size=2.0)


def per_axis(f, scales):
    """f applied to each axis' scale; a plain float when isotropic (VIGRA's usual call)."""
    values = tuple(f(v) for v in scales)
    return values[0] if len(set(values)) == 1 else values


def compute(volume, entries, is2d_data, factors=(1.0, 1.0, 1.0)):
    z = 1 if is2d_data else volume.shape[0]
    channels = []
    for kind, scale, in2d in entries:
        scales = [scale * f for f in factors]
        pre = per_axis(lambda v: math.sqrt(v * v - 1) if v > 1 else v, scales)
        s = per_axis(lambda v: 1.0 if v > 1 else v, scales)
        flat = is2d_data or in2d
        sz = s if isinstance(s, float) else s[0]
        sigmas = [sz, 0.66 * sz] if kind == "differenceofgaussians" else [sz, 0.5 * sz] if kind == "structuretensoreigenvalues" else [sz]
        filter_flat = flat or any(math.ceil(2 * g) + 1 > z for g in sigmas)
        if is2d_data:
            img = vigra.taggedView(volume, "yx")
            p = timed(vigra.filters.gaussianSmoothing, img, pre, window_size=3.5)
            out = np.asarray(feature(kind, p, s), dtype=np.float64)
            out = out.reshape(out.shape[0], out.shape[1], -1)[None]
        else:
            img = vigra.taggedView(volume, "zyx")
            if flat:
                p = np.stack([np.asarray(timed(vigra.filters.gaussianSmoothing, vigra.taggedView(volume[i], "yx"), pre, window_size=3.5)) for i in range(z)])
            else:
                p = np.asarray(timed(vigra.filters.gaussianSmoothing, img, pre, window_size=3.5))
            if filter_flat:
                slices = [np.asarray(feature(kind, vigra.taggedView(np.ascontiguousarray(p[i]).astype(np.float32), "yx"), s), dtype=np.float64) for i in range(z)]
                out = np.stack([x.reshape(x.shape[0], x.shape[1], -1) for x in slices])
            else:
                out = np.asarray(feature(kind, vigra.taggedView(p.astype(np.float32), "zyx"), s), dtype=np.float64)
                out = out.reshape(out.shape[0], out.shape[1], out.shape[2], -1)
        if kind in ("structuretensoreigenvalues", "hessianofgaussianeigenvalues"):
            out = -np.sort(-out, axis=-1)          # descending, as ilastik orders eigenvalues
        channels.append(out)
    return np.concatenate(channels, axis=-1)


if __name__ == "__main__":
    volume = np.load(sys.argv[1]).astype(np.float32)
    option = sys.argv[4] if len(sys.argv) > 4 else ""
    is2d = option == "2d-data"
    VIGRA_ST = option == "st=vigra"
    factors = tuple(float(v) for v in option.split("=")[1].split(",")) if option.startswith("axis-scales=") else (1.0, 1.0, 1.0)
    entries = parse(sys.argv[2])
    result = compute(volume, entries, is2d, factors)
    if is2d:
        result = result[0]
    np.save(sys.argv[3], result.astype(np.float32))
    print(VIGRA_SECONDS)

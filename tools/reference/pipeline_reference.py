#!/usr/bin/python3
"""The pipeline ilastik users run today, made of the libraries ilastik is built on, timed stage by stage: VIGRA
features (ilastik's recipe, vigra_features.py) and a VIGRA random forest, block by block with a halo as ilastik's
lazyflow computes them, then scipy.ndimage.label on the thresholded probabilities and scikit-image's marching cubes
on the labels' foreground, both on the whole volume.

Usage: pipeline_reference.py RAW.h5 DATASET STROKES.h5 DATASET SPEC TREES BLOCK HALO CHANNEL THRESHOLD
RAW: (z, y, x) image; STROKES: uint8 training labels (0 = none, 1..K = classes) of the same shape, all inside one
block-aligned crop. SPEC: ChunkSeg's feature spec. The forest (TREES trees, VIGRA's defaults, as ilastik trains) is
trained on the strokes' features first; training is not part of the timed pipeline. Prints one JSON object: seconds
per stage, objects, triangles, peak RSS (MB) and versions.
"""
import json, resource, sys, time
import h5py
import numpy as np
import scipy
import skimage
from scipy import ndimage as ndi
from skimage.measure import marching_cubes
import vigra
import vigra_features


def blocks(shape, block):
    for z in range(0, shape[0], block):
        for y in range(0, shape[1], block):
            for x in range(0, shape[2], block):
                yield tuple(slice(s, min(s + block, n)) for s, n in zip((z, y, x), shape))


def block_features(raw, core, halo, entries):
    """Features of the core box, computed on the core grown by the halo (clipped at the volume's border)."""
    read = tuple(slice(max(0, c.start - halo), min(n, c.stop + halo)) for c, n in zip(core, raw.shape))
    volume = np.ascontiguousarray(raw[read], dtype=np.float32)
    inner = tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, read))
    channels = [vigra_features.compute(volume, [entry], False)[inner].astype(np.float32) for entry in entries]
    return np.concatenate(channels, axis=-1)


def main():
    raw_path, raw_set, strokes_path, strokes_set, spec = sys.argv[1:6]
    trees, block, halo, channel, threshold = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), float(sys.argv[10])
    entries = vigra_features.parse(spec)
    with h5py.File(raw_path, "r") as f:
        raw = f[raw_set][...]
    with h5py.File(strokes_path, "r") as f:
        strokes = f[strokes_set][...]

    # Training (not timed): features of the blocks holding strokes.
    xs, ys = [], []
    for core in blocks(raw.shape, block):
        labels = strokes[core]
        if not labels.any():
            continue
        features = block_features(raw, core, halo, entries)
        mask = labels > 0
        xs.append(features[mask])
        ys.append(labels[mask])
    forest = vigra.learning.RandomForest(treeCount=trees)
    forest.learnRF(np.concatenate(xs), np.concatenate(ys).astype(np.uint32).reshape(-1, 1))

    seconds = {"features": 0.0, "forest": 0.0}
    vigra_features.VIGRA_SECONDS = 0.0
    start = time.perf_counter()
    foreground = np.zeros(raw.shape, dtype=bool)
    for core in blocks(raw.shape, block):
        t = time.perf_counter()
        features = block_features(raw, core, halo, entries)
        seconds["features"] += time.perf_counter() - t
        t = time.perf_counter()
        shape = features.shape[:3]
        probabilities = forest.predictProbabilities(features.reshape(-1, features.shape[-1]))
        foreground[core] = probabilities[:, channel].reshape(shape) >= threshold
        seconds["forest"] += time.perf_counter() - t
    t = time.perf_counter()
    labels, objects = ndi.label(foreground)
    seconds["label"] = time.perf_counter() - t
    t = time.perf_counter()
    vertices, faces, _, _ = marching_cubes((labels > 0).astype(np.float32), 0.5)
    seconds["mesh"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "objects": int(objects), "triangles": int(len(faces)),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "versions": {"vigra": vigra.version, "scipy": scipy.__version__, "skimage": skimage.__version__}}))


if __name__ == "__main__":
    main()

"""Writes a small Zarr array and numpy.pad references for boxes that stick out of it.

usage: pad_reference.py OUTDIR
Writes OUTDIR/pad.zarr and OUTDIR/manifest.json: [{"mode", "start", "shape", "npy"}], where npy holds the
box cut out of numpy.pad(array, ..., mode) ('reflect', 'edge' or 'constant' with the array's fill value).
"""
import json
import os
import sys

import numpy as np
import zarr

OUT = sys.argv[1]
rng = np.random.default_rng(7)
a = rng.integers(-1000, 1000, size=(5, 6, 7), dtype=np.int16)
z = zarr.open_array(os.path.join(OUT, "pad.zarr"), mode="w", shape=a.shape, chunks=(2, 4, 3), dtype="<i2", fill_value=-9)
z[...] = a
np.save(os.path.join(OUT, "pad.npy"), a)

BOXES = [
    ((-2, -3, -1), (9, 12, 9)),     # sticks out on every side
    ((-1, 0, 4), (3, 6, 6)),        # low z, high x
    ((3, -4, -4), (4, 5, 5)),       # high z, low y and x
    ((-9, 2, -13), (20, 2, 30)),    # more than one reflection period
    ((1, 1, 1), (2, 2, 2)),         # inside
    ((6, 7, 8), (2, 2, 2)),         # entirely outside
]
MODES = {"Reflect101": "reflect", "Nearest": "edge", "Constant": "constant"}
manifest = []
for i, (start, shape) in enumerate(BOXES):
    pad = [(max(0, -s), max(0, s + n - d)) for s, n, d in zip(start, shape, a.shape)]
    for mode, np_mode in MODES.items():
        kw = {"constant_values": -9} if np_mode == "constant" else {}
        p = np.pad(a, pad, mode=np_mode, **kw)
        sl = tuple(slice(s + lo, s + lo + n) for s, n, (lo, _) in zip(start, shape, pad))
        npy = os.path.join(OUT, f"box{i}_{mode}.npy")
        np.save(npy, p[sl])
        manifest.append({"mode": mode, "start": list(start), "shape": list(shape), "npy": npy})
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f)

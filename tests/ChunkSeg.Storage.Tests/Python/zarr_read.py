"""Reads arrays ChunkSeg wrote with zarr-python and compares them with the expected .npy files.

usage: zarr_read.py MANIFEST.json
Each manifest entry: {"name", "store", "inner", "npy", "dtype", "chunks", "compressor" (numcodecs id or null),
optional "fill_value", optional "ome": {"axes": [[name, type, unit or null], ...], "scale": [...]}}.
Prints a JSON object {name: "ok" or what differs}.
"""
import json
import math
import os
import sys

import numpy as np
import zarr

results = {}
for case in json.load(open(sys.argv[1])):
    try:
        path = os.path.join(case["store"], case["inner"]) if case["inner"] else case["store"]
        problems = []
        ome = case.get("ome")
        if ome:
            group = zarr.open_group(path, mode="r")
            ms = group.attrs["multiscales"]
            m = ms[0]
            if m.get("version") != "0.4":
                problems.append(f"version {m.get('version')}")
            axes = [[a["name"], a["type"], a.get("unit")] for a in m["axes"]]
            if axes != ome["axes"]:
                problems.append(f"axes {axes} != {ome['axes']}")
            ds = m["datasets"]
            if len(ds) != 1 or ds[0]["path"] != "0":
                problems.append(f"datasets {ds}")
            scale = [t for t in ds[0]["coordinateTransformations"] if t["type"] == "scale"][0]["scale"]
            if not np.allclose(scale, ome["scale"]):
                problems.append(f"scale {scale} != {ome['scale']}")
            for parent in ome.get("groups", []):
                if not os.path.exists(os.path.join(parent, ".zgroup")):
                    problems.append(f"no .zgroup in {parent}")
            array = group["0"]
        else:
            array = zarr.open_array(path, mode="r")
        expected = np.load(case["npy"])
        if array.dtype != np.dtype(case["dtype"]):
            problems.append(f"dtype {array.dtype.str} != {case['dtype']}")
        if list(array.chunks) != case["chunks"]:
            problems.append(f"chunks {array.chunks} != {case['chunks']}")
        cid = None if array.compressor is None else array.compressor.codec_id
        if cid != case["compressor"]:
            problems.append(f"compressor {cid} != {case['compressor']}")
        if "fill_value" in case:
            fv = array.fill_value
            want = case["fill_value"]
            if not (fv == want or (isinstance(fv, float) and math.isnan(fv) and want == "NaN")):
                problems.append(f"fill_value {fv!r} != {want!r}")
        actual = array[...]
        if actual.shape != expected.shape:
            problems.append(f"shape {actual.shape} != {expected.shape}")
        elif not np.array_equal(actual, expected, equal_nan=actual.dtype.kind == "f"):
            diff = np.argwhere(~((actual == expected) | (np.isnan(actual) & np.isnan(expected)) if actual.dtype.kind == "f" else actual == expected))
            problems.append(f"{len(diff)} voxels differ, first at {diff[0].tolist()}: {actual[tuple(diff[0])]} != {expected[tuple(diff[0])]}")
        results[case["name"]] = "ok" if not problems else "; ".join(problems)
    except Exception as e:  # report per case, keep going
        results[case["name"]] = f"{type(e).__name__}: {e}"
print(json.dumps(results))

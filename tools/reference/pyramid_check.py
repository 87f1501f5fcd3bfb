#!/usr/bin/env python3
"""Reads a multiscale OME-Zarr (v2) image the way a viewer would, with zarr-python alone:

    pyramid_check.py IMAGE.zarr

opens the group, reads .zattrs multiscales[0], and for every dataset it lists opens the array at its path and
prints one JSON line: {"path", "shape", "dtype", "sha256" (of the C-order little-endian bytes), "scale", "translation"}.
The test compares these with what ChunkSeg wrote and with PyramidPlan. Debian's /usr/bin/python3 (zarr 2.13, v2 only).
"""
import hashlib
import json
import sys

import numpy as np
import zarr


def main(path):
    group = zarr.open_group(path, mode="r")
    ms = group.attrs["multiscales"][0]
    assert ms["version"] == "0.4", ms["version"]
    for ds in ms["datasets"]:
        a = group[ds["path"]][...]
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<")))
        t = {x["type"]: x[x["type"]] for x in ds["coordinateTransformations"]}
        print(json.dumps({"path": ds["path"], "shape": list(a.shape), "dtype": str(a.dtype),
                          "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
                          "scale": t.get("scale"), "translation": t.get("translation")}))


if __name__ == "__main__":
    main(sys.argv[1])

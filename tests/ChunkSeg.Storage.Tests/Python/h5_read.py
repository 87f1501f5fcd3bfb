"""Reads HDF5 datasets with h5py and reports what it sees.

Usage: h5_read.py cases.json  (each case: {"file", "dataset", "npy"}); prints a JSON list with, per case,
dtype, shape, chunks, compression, compression_opts, shuffle, fillvalue, axistags (parsed JSON or null),
axistags_is_vlen, element_size_um, and writes the data, little-endian, to npy.
"""
import json
import sys

import h5py
import numpy as np


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        with h5py.File(c["file"], "r") as f:
            ds = f[c["dataset"]]
            data = ds[...]
            np.save(c["npy"], data.astype(data.dtype.newbyteorder("<")))
            tags = ds.attrs.get("axistags")
            tag_type = ds.attrs.get_id("axistags").get_type() if "axistags" in ds.attrs else None
            esu = ds.attrs.get("element_size_um")
            try:
                fill = float(ds.fillvalue)
            except RuntimeError:  # no fill value defined in the file (PureHDF writes none)
                fill = None
            out.append({
                "dtype": data.dtype.name,
                "byteorder": ds.dtype.byteorder,
                "shape": list(ds.shape),
                "chunks": list(ds.chunks) if ds.chunks else None,
                "compression": ds.compression,
                "compression_opts": ds.compression_opts,
                "shuffle": ds.shuffle,
                "fillvalue": fill,
                "axistags": json.loads(tags) if tags is not None else None,
                "axistags_is_vlen": bool(tag_type.is_variable_str()) if tag_type is not None else None,
                "element_size_um": [float(v) for v in esu] if esu is not None else None,
                "element_size_um_dtype": esu.dtype.str if esu is not None else None,
            })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

"""Writes HDF5 test files with h5py (the independent implementation) from a JSON list of cases.

Usage: h5_write.py cases.json
Each case: {"file", "dataset", "dtype" (numpy, e.g. ">u2"), "shape", "chunks" (null = contiguous),
"compression" (null, "gzip", "lzf"), "shuffle", "fill", "attrs" ({name: value}), "npy" (path for the data,
little-endian), "partial" (write only the first half along axis 0), "kind" ("array", "compound", "string")}.
"""
import json
import sys

import h5py
import numpy as np


def make_data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        data = rng.standard_normal(shape) * 1000
    elif dt.kind == "u":
        hi = min(np.iinfo(dt).max, 2**62)
        data = rng.integers(0, hi, size=shape, dtype=np.uint64)
        data[(0,) * len(shape)] = np.iinfo(dt).max
    else:
        info = np.iinfo(dt)
        data = rng.integers(max(info.min, -2**62), min(info.max, 2**62), size=shape, dtype=np.int64)
        data[(0,) * len(shape)] = info.min
    return data.astype(dt)


def attr_value(value):
    if isinstance(value, dict) and "fixed_string" in value:
        return np.bytes_(value["fixed_string"].encode())
    if isinstance(value, list):
        return np.asarray(value, dtype="float32")
    return value


def main():
    cases = json.load(open(sys.argv[1]))
    for i, c in enumerate(cases):
        with h5py.File(c["file"], "a") as f:
            kind = c.get("kind", "array")
            if kind == "compound":
                dt = np.dtype([("a", "<i4"), ("b", "<f8")])
                f.create_dataset(c["dataset"], shape=tuple(c["shape"]), dtype=dt)
                continue
            if kind == "string":
                f.create_dataset(c["dataset"], data=np.array([["ab", "cd"], ["ef", "gh"]], dtype=h5py.string_dtype()))
                continue
            shape = tuple(c["shape"])
            data = make_data(c["dtype"], shape, c.get("seed", i))
            kwargs = {}
            if c.get("chunks") is not None:
                kwargs["chunks"] = tuple(c["chunks"])
            if c.get("compression"):
                kwargs["compression"] = c["compression"]
                if c["compression"] == "gzip":
                    kwargs["compression_opts"] = c.get("level", 4)
            if c.get("shuffle"):
                kwargs["shuffle"] = True
            if c.get("fill") is not None:
                kwargs["fillvalue"] = c["fill"]
            ds = f.create_dataset(c["dataset"], shape=shape, dtype=np.dtype(c["dtype"]), **kwargs)
            if c.get("partial"):
                half = shape[0] // 2
                ds[:half] = data[:half]
                data[half:] = c.get("fill") or 0
            else:
                ds[...] = data
            for name, value in (c.get("attrs") or {}).items():
                ds.attrs[name] = attr_value(value)
            if c.get("npy"):
                np.save(c["npy"], data.astype(data.dtype.newbyteorder("<")))


if __name__ == "__main__":
    main()

"""Writes Zarr v2 arrays with zarr-python for ChunkSeg to read, plus the expected data as .npy files.

usage: zarr_write.py OUTDIR
Writes OUTDIR/manifest.json: a list of cases, each with the store path, inner path, metadata and the
expected whole array and a few boxes (numpy slices of it), all as little-endian .npy files.
"""
import json
import os
import sys

import numpy as np
import zarr
from numcodecs import Blosc, GZip, Zlib, Zstd

OUT = sys.argv[1]
SHAPE = (11, 17, 19)
CHUNKS = (4, 5, 6)

CODECS = {
    "none": None,
    "zlib": Zlib(level=3),
    "gzip": GZip(level=5),
    "zstd": Zstd(level=3),
    "blosc-lz4": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
    "blosc-lz4hc-noshuffle": Blosc(cname="lz4hc", clevel=4, shuffle=Blosc.NOSHUFFLE),
    "blosc-zstd": Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE),
    "blosc-zlib-bitshuffle": Blosc(cname="zlib", clevel=5, shuffle=Blosc.BITSHUFFLE),
    "blosc-blosclz": Blosc(cname="blosclz", clevel=9, shuffle=Blosc.SHUFFLE),
    "blosc-lz4-noshuffle": Blosc(cname="lz4", clevel=1, shuffle=Blosc.NOSHUFFLE),
}
DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f4", "f8"]

rng = np.random.default_rng(20240611)
manifest = []


def data_for(dtype, shape):
    dt = np.dtype(dtype).newbyteorder("=")
    if dt.kind == "f":
        a = rng.standard_normal(shape) * 1000
        a.flat[::37] = np.inf
        a.flat[5::41] = -0.0
        return a.astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


def save(name, array):
    path = os.path.join(OUT, name + ".npy")
    np.save(path, np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")))
    return path


def add(name, store, inner, dtype, codec_name, fill_value, separator, shape=SHAPE, chunks=CHUNKS, missing=("0", "1.2.1")):
    dt = np.dtype(dtype)
    root = os.path.join(OUT, store)
    path = os.path.join(root, inner) if inner else root
    z = zarr.open_array(zarr.DirectoryStore(path, dimension_separator=separator), mode="w", shape=shape, chunks=chunks,
                        dtype=dt, compressor=CODECS[codec_name], fill_value=fill_value)
    z[...] = data_for(dt, shape)
    # Missing chunk files must read as the fill value.
    for key in missing:
        idx = [int(k) for k in key.split(".")]
        idx += [0] * (len(shape) - len(idx))
        f = os.path.join(path, separator.join(str(i) for i in idx))
        if os.path.exists(f):
            os.remove(f)
    expected = z[...]
    boxes = []
    for b in range(3):
        start = [int(rng.integers(0, s)) for s in shape]
        size = [int(rng.integers(1, s - st + 1)) for s, st in zip(shape, start)]
        sl = tuple(slice(st, st + n) for st, n in zip(start, size))
        boxes.append({"start": start, "shape": size, "npy": save(f"{name}.box{b}", expected[sl])})
    manifest.append({
        "name": name, "store": root, "inner": inner, "dtype": dt.str, "shape": list(shape), "chunks": list(chunks),
        "codec": codec_name, "fill_value": None if fill_value is None else str(fill_value), "npy": save(name, expected), "boxes": boxes,
    })


i = 0
# Every codec, with a small integer and a big-endian float type.
for codec in CODECS:
    for dtype in ["<u2", ">f4"]:
        sep = "." if i % 2 == 0 else "/"
        add(f"codec_{codec}_{dtype[1:]}_{'be' if dtype[0] == '>' else 'le'}", f"codec_{i}.zarr", "", dtype, codec,
            float("nan") if dtype[1] == "f" else 7, sep)
        i += 1
# Every dtype in both byte orders, with two codecs.
for dtype in DTYPES:
    for order in ["<", ">"] if dtype[1] != "1" else ["|"]:
        for codec in ["blosc-lz4", "zlib"]:
            sep = "/" if i % 2 == 0 else "."
            fill = 0 if i % 3 == 0 else (-3 if dtype[0] in "if" else 3)
            add(f"dtype_{dtype}_{order}_{codec}", f"dtype_{i}.zarr", "", order + dtype, codec, fill, sep)
            i += 1
# Nested inside groups; null fill value; one chunk covering everything; chunks larger than the array.
g = zarr.open_group(os.path.join(OUT, "nested.zarr"), mode="w")
g.create_group("labels")
# fill_value null: zarr-python leaves missing chunks uninitialised, so none are removed here.
add("nested_labels_cells", "nested.zarr", "labels/cells", "<u4", "zstd", None, "/", missing=())
add("single_chunk", "single.zarr", "", "<i2", "gzip", 0, ".", chunks=SHAPE, missing=())
add("chunk_larger", "larger.zarr", "", "<f8", "blosc-zstd", -1.5, ".", chunks=(16, 32, 32), missing=())
add("rank4_czyx", "rank4.zarr", "", "<u2", "blosc-lz4", 0, "/", shape=(2, 5, 6, 7), chunks=(1, 2, 4, 3), missing=("0.1.1.0",))
add("rank2_yx", "rank2.zarr", "", "<u1", "zlib", 255, ".", shape=(23, 9), chunks=(5, 4), missing=("1.1",))

# An OME-Zarr 0.4 image written by hand (ome-zarr-py is not a dependency): czyx, with a global scale too.
img = zarr.open_group(os.path.join(OUT, "image.zarr"), mode="w")
img.attrs["multiscales"] = [{
    "version": "0.4", "name": "image",
    "axes": [{"name": "c", "type": "channel"}, {"name": "z", "type": "space", "unit": "nanometer"},
             {"name": "y", "type": "space", "unit": "nanometer"}, {"name": "x", "type": "space", "unit": "nanometer"}],
    "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 2.5, 0.5, 0.25]}]},
                 {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 5.0, 1.0, 0.5]}]}],
    "coordinateTransformations": [{"type": "scale", "scale": [1.0, 2.0, 1.0, 1.0]}],
}]
a0 = img.create_dataset("0", shape=(2, 6, 7, 8), chunks=(1, 3, 4, 5), dtype="<u2", compressor=CODECS["blosc-lz4"],
                        dimension_separator="/")
a0[...] = data_for("<u2", a0.shape)
img.create_dataset("1", shape=(2, 3, 4, 4), chunks=(1, 3, 4, 5), dtype="<u2")
manifest.append({"name": "ome_image", "store": os.path.join(OUT, "image.zarr"), "inner": "", "dtype": "<u2",
                 "shape": list(a0.shape), "chunks": list(a0.chunks), "codec": "blosc-lz4", "fill_value": "0",
                 "npy": save("ome_image", a0[...]), "boxes": [],
                 "axes": "czyx", "voxel_size": [5.0, 0.5, 0.25], "unit": "nanometer"})

# A plain array with xarray's dimension names in a non-default order.
xa = zarr.open_array(os.path.join(OUT, "xarray.zarr"), mode="w", shape=(4, 5, 6, 2), chunks=(2, 2, 2, 2), dtype="<i4")
xa[...] = data_for("<i4", xa.shape)
xa.attrs["_ARRAY_DIMENSIONS"] = ["z", "y", "x", "c"]
manifest.append({"name": "xarray_zyxc", "store": os.path.join(OUT, "xarray.zarr"), "inner": "", "dtype": "<i4",
                 "shape": list(xa.shape), "chunks": list(xa.chunks), "codec": "blosc-lz4", "fill_value": "0",
                 "npy": save("xarray_zyxc", xa[...]), "boxes": [], "axes": "zyxc", "voxel_size": [1, 1, 1], "unit": "micrometer"})

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(len(manifest))

"""Writes N5 datasets for ChunkSeg to read, plus the expected arrays as little-endian .npy files.

usage: n5_write.py OUTDIR

Two independent writers:
- zarr-python 2.13's zarr.n5.N5Store (Debian python3-zarr) with numcodecs GZip/Zlib/Zstd/Blosc or raw: every dtype, every
  compression, shapes that the blocks do not divide (it pads edge blocks to the full block size);
- a small writer below, from the N5 spec (https://github.com/saalfeldlab/n5#file-system-specification), that cuts edge
  blocks to their size inside the dataset as Java's N5 does, and can write varlength (mode 1) headers.
Layouts: a BigStitcher/BigDataViewer-like setup0/timepoint0/s0, s1 with resolution and downsamplingFactors, an
n5-viewer pixelResolution, a neuroglancer-style "axes" attribute, a container folder without the .n5 suffix, and
datasets compressed with bzip2 and xz (which ChunkSeg must refuse by name).

OUTDIR/manifest.json lists the cases: container root, dataset path, dtype, shape and block size in ChunkSeg's (z, y, x)
order, expected axes and voxel size (z, y, x, micrometers), the expected whole array and a few boxes.
"""
import gzip
import json
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import zarr
from numcodecs import BZ2, GZip, LZMA, Blosc, Zlib, Zstd

warnings.simplefilter("ignore")   # N5Store warns that blosc is not in every N5 implementation

OUT = sys.argv[1]
SHAPE = (11, 17, 19)     # z, y, x: no block size below divides it
BLOCKS = (4, 5, 6)

CODECS = {
    "raw": None,
    "gzip": GZip(level=5),
    "zlib": Zlib(level=3),            # N5: {"type": "gzip", "useZlib": true}
    "zstd": Zstd(level=3),
    "blosc-lz4": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
    "blosc-zstd-bitshuffle": Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE),
    "blosc-blosclz-noshuffle": Blosc(cname="blosclz", clevel=9, shuffle=Blosc.NOSHUFFLE),
}
DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64"]

rng = np.random.default_rng(20261207)
manifest = []


def data_for(dtype, shape):
    dt = np.dtype(dtype)
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


def block_path(dataset_dir, index_zyx):
    """N5 names a block by its grid position x first."""
    return os.path.join(dataset_dir, *[str(i) for i in reversed(index_zyx)])


def remove_blocks(dataset_dir, expected, blocks, indices):
    """Deletes block files; N5 reads a missing block as 0."""
    for idx in indices:
        os.remove(block_path(dataset_dir, idx))
        expected[tuple(slice(i * b, (i + 1) * b) for i, b in zip(idx, blocks))] = 0


def add(name, root, inner, expected, blocks, codec, axes=None, voxel=(1.0, 1.0, 1.0), boxes=3, open_as=None):
    entries = []
    for b in range(boxes):
        start = [int(rng.integers(0, s)) for s in expected.shape]
        size = [int(rng.integers(1, s - st + 1)) for s, st in zip(expected.shape, start)]
        sl = tuple(slice(st, st + n) for st, n in zip(start, size))
        entries.append({"start": start, "shape": size, "npy": save(f"{name}.box{b}", expected[sl])})
    manifest.append({
        "name": name, "root": os.path.join(OUT, root), "inner": inner, "open": open_as,
        "dtype": expected.dtype.name, "shape": list(expected.shape), "blocks": list(blocks), "codec": codec,
        "axes": axes or {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}[expected.ndim], "voxel_size": list(voxel),
        "npy": save(name, expected), "boxes": entries,
    })


def zarr_dataset(root, inner, dtype, codec, shape=SHAPE, blocks=BLOCKS, attrs=None):
    """Writes through zarr-python's N5Store; returns the values as zarr-python reads them back."""
    z = zarr.open_array(store=zarr.N5Store(os.path.join(OUT, root)), path=inner, mode="w", shape=shape, chunks=blocks,
                        dtype=dtype, compressor=CODECS[codec] if isinstance(codec, str) else codec)
    z[...] = data_for(dtype, shape)
    if attrs:
        z.attrs.update(attrs)
    return z[...]


# ---- a writer from the spec: edge blocks cut to size (Java N5), optional varlength header ---------------------------

def compress(kind, raw):
    if kind == "raw":
        return raw
    if kind == "gzip":
        return gzip.compress(raw, compresslevel=6)
    if kind == "zlib":
        return zlib.compress(raw, 6)
    if kind == "zstd":
        return Zstd(level=5).encode(raw)
    if kind == "blosc":
        return Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE).encode(raw)
    raise ValueError(kind)


def compression_attrs(kind):
    return {
        "raw": {"type": "raw"},
        "gzip": {"type": "gzip", "level": 6},
        "zlib": {"type": "gzip", "level": 6, "useZlib": True},
        "zstd": {"type": "zstd", "level": 5, "nbWorkers": 0},
        "blosc": {"type": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0, "nthreads": 1},
    }[kind]


def spec_dataset(root, inner, array, blocks, kind, varlength=False, attrs=None):
    path = os.path.join(OUT, root, inner)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(OUT, root, "attributes.json"), "w") as f:
        json.dump({"n5": "4.0.0"}, f)
    meta = {"dimensions": list(array.shape[::-1]), "blockSize": list(blocks[::-1]), "dataType": array.dtype.name,
            "compression": compression_attrs(kind)}
    meta.update(attrs or {})
    with open(os.path.join(path, "attributes.json"), "w") as f:
        json.dump(meta, f)
    grid = [-(-s // b) for s, b in zip(array.shape, blocks)]
    for idx in np.ndindex(*grid):
        block = array[tuple(slice(i * b, min((i + 1) * b, s)) for i, b, s in zip(idx, blocks, array.shape))]
        header = struct.pack(">HH", 1 if varlength else 0, block.ndim)
        header += b"".join(struct.pack(">I", n) for n in block.shape[::-1])
        if varlength:
            header += struct.pack(">I", block.size)
        data = np.ascontiguousarray(block).astype(block.dtype.newbyteorder(">")).tobytes()
        file = block_path(path, idx)
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(file, "wb") as f:
            f.write(header + compress(kind, data))


# ---- zarr-python: every compression (uint16, float32), every dtype (two compressions) ----------------------------------

i = 0
for codec in CODECS:
    for dtype in ["uint16", "float32"]:
        name = f"zarr_{codec}_{dtype}"
        expected = zarr_dataset(f"codec_{i}.n5", "data", dtype, codec)
        remove_blocks(os.path.join(OUT, f"codec_{i}.n5", "data"), expected, BLOCKS, [(0, 0, 0), (1, 2, 1)])
        add(name, f"codec_{i}.n5", "data", expected, BLOCKS, codec)
        i += 1
for dtype in DTYPES:
    for codec in ["gzip", "blosc-lz4"]:
        name = f"zarr_{dtype}_{codec}"
        expected = zarr_dataset(f"dtype_{i}.n5", "volumes/raw", dtype, codec)
        add(name, f"dtype_{i}.n5", "volumes/raw", expected, BLOCKS, codec)
        i += 1
# A block larger than the dataset; a 2D dataset; a dataset at the container root.
add("zarr_block_larger", "larger.n5", "big",
    zarr_dataset("larger.n5", "big", "uint8", "zstd", blocks=(16, 32, 32)), (16, 32, 32), "zstd")
add("zarr_2d", "plane.n5", "p", zarr_dataset("plane.n5", "p", "uint16", "raw", shape=(23, 9), blocks=(5, 4)), (5, 4), "raw")

# ---- the spec writer: Java-style cut edge blocks in every compression, varlength headers -------------------------------

for kind in ["raw", "gzip", "zlib", "zstd", "blosc"]:
    for dtype in ["uint8", "uint16", "float32"]:
        name = f"spec_{kind}_{dtype}"
        array = data_for(dtype, SHAPE)
        spec_dataset(f"spec_{kind}_{dtype}.n5", "a/b", array, BLOCKS, kind)
        remove_blocks(os.path.join(OUT, f"spec_{kind}_{dtype}.n5", "a/b"), array, BLOCKS, [(2, 3, 3)])
        # The spec writer agrees with zarr-python's reader, which also reads cut edge blocks (but not the Java
        # libraries' extra zstd and blosc keys, nbWorkers and nthreads).
        if kind not in ("zstd", "blosc"):
            back = zarr.open_array(store=zarr.N5Store(os.path.join(OUT, f"spec_{kind}_{dtype}.n5")), path="a/b", mode="r")[...]
            assert np.array_equal(back, array, equal_nan=True), name
        add(name, f"spec_{kind}_{dtype}.n5", "a/b", array, BLOCKS, kind)
array = data_for("int16", SHAPE)
spec_dataset("varlength.n5", "v", array, BLOCKS, "gzip", varlength=True)
add("spec_varlength_int16", "varlength.n5", "v", array, BLOCKS, "gzip")

# ---- metadata: BigStitcher layout, n5-viewer pixelResolution, axes, folder without the suffix -------------------------

# BigDataViewer N5 (BigStitcher's export): setup0 holds the per-level factors, timepoint0 the full resolution (x, y, z).
bdv = os.path.join(OUT, "bigstitcher.n5")
s0 = zarr_dataset("bigstitcher.n5", "setup0/timepoint0/s0", "uint16", "gzip", shape=(9, 20, 22), blocks=(4, 8, 8))
s1 = zarr_dataset("bigstitcher.n5", "setup0/timepoint0/s1", "uint16", "gzip", shape=(9, 10, 11), blocks=(4, 8, 8))
setup = zarr.open_group(store=zarr.N5Store(bdv), path="setup0", mode="a")
setup.attrs.update({"downsamplingFactors": [[1, 1, 1], [2, 2, 1]], "dataType": "uint16"})
timepoint = zarr.open_group(store=zarr.N5Store(bdv), path="setup0/timepoint0", mode="a")
timepoint.attrs.update({"resolution": [0.4, 0.4, 2.0], "multiScale": True})
add("bigstitcher_s0", "bigstitcher.n5", "setup0/timepoint0/s0", s0, (4, 8, 8), "gzip", voxel=(2.0, 0.4, 0.4))
add("bigstitcher_s1", "bigstitcher.n5", "setup0/timepoint0/s1", s1, (4, 8, 8), "gzip", voxel=(2.0, 0.8, 0.8))

# n5-viewer / n5-spark: pixelResolution with a unit on the dataset, and a level's own downsamplingFactors.
pr = zarr_dataset("viewer.n5", "c0/s0", "float32", "zstd",
                  attrs={"pixelResolution": {"unit": "nm", "dimensions": [100, 200, 300]}})
add("viewer_s0_nm", "viewer.n5", "c0/s0", pr, BLOCKS, "zstd", voxel=(0.3, 0.2, 0.1))
pr1 = zarr_dataset("viewer.n5", "c0/s1", "float32", "zstd", shape=(6, 9, 10),
                   attrs={"pixelResolution": {"unit": "um", "dimensions": [0.5, 0.5, 1.5]}, "downsamplingFactors": [2, 2, 1]})
add("viewer_s1_um", "viewer.n5", "c0/s1", pr1, BLOCKS, "zstd", voxel=(1.5, 1.0, 1.0))

# neuroglancer-style "axes" (x first) on a 4D dataset: x, y, c, z is ChunkSeg's zcyx; resolution per axis with units.
ax = zarr_dataset("axes.n5", "img", "uint8", "raw", shape=(3, 2, 7, 8), blocks=(2, 1, 4, 5),
                  attrs={"axes": ["x", "y", "c", "z"], "resolution": [250, 250, 1, 1000], "units": ["nm", "nm", "", "nm"]})
add("axes_zcyx", "axes.n5", "img", ax, (2, 1, 4, 5), "raw", axes="zcyx", voxel=(1.0, 0.25, 0.25))

# A container folder without the .n5 suffix, opened by the dataset folder's path.
plain = zarr_dataset("plain_container", "group/raw", "uint16", "blosc-lz4", shape=(5, 6, 7), blocks=(2, 3, 4))
add("no_suffix", "plain_container", "group/raw", plain, (2, 3, 4), "blosc-lz4",
    open_as=os.path.join(OUT, "plain_container", "group", "raw"))

# ---- refused: compressions ChunkSeg does not decode -------------------------------------------------------------------

zarr_dataset("bzip2.n5", "data", "uint8", BZ2(level=9), shape=(4, 5, 6), blocks=(2, 2, 2))
zarr_dataset("xz.n5", "data", "uint8", LZMA(preset=6), shape=(4, 5, 6), blocks=(2, 2, 2))
refused = [{"root": os.path.join(OUT, "bzip2.n5"), "inner": "data", "codec": "bzip2"},
           {"root": os.path.join(OUT, "xz.n5"), "inner": "data", "codec": "xz"}]

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump({"cases": manifest, "refused": refused}, f, indent=1)
print(len(manifest))

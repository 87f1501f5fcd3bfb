#!/usr/bin/python3
"""Times h5py and zarr-python reading and writing the same volume ChunkSeg just timed, and tifffile reading TIFFs of it.

Usage: io_reference.py ZARR_STORE H5_FILE H5_DATASET REPEATS [TIFF_DIR TILE]
Reads the Zarr array at ZARR_STORE/0 and the HDF5 dataset whole, then writes a copy of each with the same
chunks and codec (and, for Zarr, the same chunk key layout), keeping the best of REPEATS runs. With TIFF_DIR: writes the Zarr array's data with tifffile as
TIFF_DIR/none.tif (uncompressed strips, tifffile's default: one strip per page), deflate.tif (deflate strips,
tifffile's default rows per strip) and deflate-tiled.tif (deflate, TILE x TILE tiles), for ChunkSeg to read next, and
times tifffile.imread of each (one thread: maxworkers=1) and tifffile.memmap (+ a copy into memory) of the
uncompressed file, checking each read equals the data; then times tifffile.imwrite of the data as an ImageJ
hyperstack, uncompressed and deflate (zlib), as ChunkSeg's convert writes TIFF. Prints one JSON object with seconds per operation.
"""
import json, os, shutil, sys, tempfile, time

import h5py
import numcodecs
import zarr

store, h5_path, h5_dataset, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
numcodecs.blosc.use_threads = False    # ChunkSeg's timed calls are single-threaded too


def best(fn):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# Every timed read opens the array or file afresh, as ChunkSeg's side does: no warm chunk cache.
z = zarr.open_array(os.path.join(store, "0"), mode="r")
data = z[...]
zarr_read = best(lambda: zarr.open_array(os.path.join(store, "0"), mode="r")[...])

tmp = tempfile.mkdtemp()
def zarr_write():
    target = os.path.join(tmp, "copy.zarr")
    shutil.rmtree(target, ignore_errors=True)
    # The source's dimension_separator too ("/" for OME-Zarr): nested chunk directories make writing slower than flat keys.
    out = zarr.open_array(target, mode="w", shape=z.shape, chunks=z.chunks, dtype=z.dtype, compressor=z.compressor,
                          dimension_separator=z._dimension_separator)
    out[...] = data
zarr_write_s = best(zarr_write)

def h5_read_once():
    with h5py.File(h5_path, "r") as f:
        return f[h5_dataset][...]
h5_read = best(h5_read_once)

def h5_read_two_threads():
    # Two threads, each reading half of the z extent from one open file (h5py serialises them on its global lock).
    from concurrent.futures import ThreadPoolExecutor
    with h5py.File(h5_path, "r") as f:
        ds = f[h5_dataset]
        half = ds.shape[0] // 2
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda r: ds[r[0]:r[1]], [(0, half), (half, ds.shape[0])]))
h5_read_2 = best(h5_read_two_threads)
with h5py.File(h5_path, "r") as f:
    ds = f[h5_dataset]
    chunks, compression, opts, shuffle = ds.chunks, ds.compression, ds.compression_opts, ds.shuffle
    h5_data = ds[...]

def h5_write():
    target = os.path.join(tmp, "copy.h5")
    with h5py.File(target, "w") as f:
        f.create_dataset("data", data=h5_data, chunks=chunks, compression=compression, compression_opts=opts, shuffle=shuffle)
h5_write_s = best(h5_write)
shutil.rmtree(tmp, ignore_errors=True)

tiff = {}
if len(sys.argv) > 5:
    import numpy as np
    import tifffile
    tiff_dir, tile = sys.argv[5], int(sys.argv[6])
    files = {"none": dict(), "deflate": dict(compression="zlib"), "deflate-tiled": dict(compression="zlib", tile=(tile, tile))}
    for name, kwargs in files.items():
        path = os.path.join(tiff_dir, name + ".tif")
        tifffile.imwrite(path, data, **kwargs)
        if not np.array_equal(tifffile.imread(path), data):
            sys.exit(f"tifffile read back different data from {path}")
        tiff["tiff_read_" + name] = best(lambda: tifffile.imread(path, maxworkers=1))
        with tifffile.TiffFile(path) as t:
            page = t.pages[0]
            tiff["tiff_layout_" + name] = (f"{page.tilelength}x{page.tilewidth} tiles" if page.is_tiled
                                           else f"{page.rowsperstrip} rows per strip")
    none = os.path.join(tiff_dir, "none.tif")
    if not np.array_equal(np.array(tifffile.memmap(none, mode="r")), data):
        sys.exit(f"tifffile.memmap read different data from {none}")
    tiff["tiff_memmap_none"] = best(lambda: np.array(tifffile.memmap(none, mode="r")))
    # Writes as ChunkSeg's convert writes TIFF: an ImageJ hyperstack with its voxel size, uncompressed and deflate.
    written = os.path.join(tiff_dir, "tifffile-written.tif")
    for name, kwargs in {"none": dict(), "deflate": dict(compression="zlib")}.items():
        tiff["tiff_write_" + name] = best(lambda: tifffile.imwrite(written, data, imagej=True, resolution=(1.0, 1.0),
                                                                   metadata={"spacing": 1.0, "unit": "micron", "axes": "ZYX"}, **kwargs))
        if not np.array_equal(tifffile.imread(written), data):
            sys.exit(f"tifffile read back different data from {written}")
    os.remove(written)
    tiff["tifffile"] = tifffile.__version__

print(json.dumps({"bytes": int(data.nbytes), "zarr_read": zarr_read, "zarr_write": zarr_write_s,
                  "h5_read": h5_read, "h5_read_2": h5_read_2, "h5_write": h5_write_s,
                  **{k: v for k, v in tiff.items() if k != "tifffile"},
                  "versions": {"zarr": zarr.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
                               "numcodecs": numcodecs.__version__, **({"tifffile": tiff["tifffile"]} if tiff else {})}}))

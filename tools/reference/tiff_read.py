"""Reads a TIFF with tifffile, as a Fiji user's file would be checked: tiff_read.py in.tif out.npy out.json.

Saves the first series as ChunkSeg orders it (OME order t, c, z, y, x; little-endian) to out.npy, and writes out.json:
{"axes": tifffile's series axes, "shape", "dtype", "is_imagej", "is_bigtiff", "imagej_metadata" (the parsed
description), "pages", "compression", "resolution": [XResolution, YResolution] as floats, "resolutionunit",
"sampleformat", "bitspersample"}.
"""
import json
import sys

import numpy as np
import tifffile


def main(path, npy, out):
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = series.axes
        page = tif.pages[0]
        x = page.tags["XResolution"].value
        y = page.tags["YResolution"].value
        info = {
            "axes": axes, "shape": list(data.shape), "dtype": data.dtype.name,
            "is_imagej": tif.is_imagej, "is_bigtiff": tif.is_bigtiff,
            "imagej_metadata": tif.imagej_metadata, "pages": len(tif.pages),
            "compression": int(page.compression), "resolution": [x[0] / x[1], y[0] / y[1]],
            "resolutionunit": int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else None,
            "sampleformat": int(page.sampleformat), "bitspersample": int(page.bitspersample),
        }
    names = axes.lower().replace("s", "c")
    order = [names.index(a) for a in "tczyx" if a in names]
    data = np.ascontiguousarray(np.transpose(data, order)).astype(data.dtype.newbyteorder("<"))
    np.save(npy, data)
    with open(out, "w") as f:
        json.dump(info, f, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:4])

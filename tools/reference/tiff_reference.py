"""Writes TIFF files with tifffile (and Pillow for LZW and PackBits, which tifffile cannot encode without imagecodecs).

Usage: tiff_reference.py cases.json. Each case: {"writer": "tifffile" | "pil" | "series" | "omefiles", "file", "npy", "dtype",
"shape" (the file's natural shape), "axes" (its natural axes, tifffile letters: pages slowest first, then Y, X, then S for
samples), "seed", "kwargs" (for tifffile.imwrite / Image.save), "data" (optional: an .npy written instead of random data)}. Saves to npy the data as ChunkSeg reports it: axes in
OME order (t, c, z, y, x; S is c), little-endian. "series" writes the first axis as one file per index into the folder
"file"; "omefiles" writes one OME-TIFF per time point, the first file's OME-XML naming them all.
"""
import json
import os
import sys

import numpy as np
import tifffile


def random_data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def ome_order(data, axes):
    names = axes.lower().replace("s", "c")
    order = [names.index(a) for a in "tczyx" if a in names]
    return np.ascontiguousarray(np.transpose(data, order)).astype(data.dtype.newbyteorder("<"))


def write_pil(path, data, kwargs):
    from PIL import Image
    frames = [Image.fromarray(np.ascontiguousarray(p)) for p in data]
    frames[0].save(path, save_all=True, append_images=frames[1:], **kwargs)


def write_omefiles(folder, data, kwargs):
    # data is TZYX; file t holds the z planes of time point t.
    os.makedirs(folder, exist_ok=True)
    t, z, y, x = data.shape
    names = [f"tp{i}.ome.tif" for i in range(t)]
    uuids = [f"urn:uuid:00000000-0000-0000-0000-00000000000{i}" for i in range(t)]
    tiffdata = "".join(
        f'<TiffData FirstT="{i}" IFD="0" PlaneCount="{z}"><UUID FileName="{names[i]}">{uuids[i]}</UUID></TiffData>'
        for i in range(t))
    dtype = {"uint8": "uint8", "uint16": "uint16", "float32": "float"}[data.dtype.name]
    xml = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
           f'UUID="{uuids[0]}"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="{dtype}" '
           f'SizeX="{x}" SizeY="{y}" SizeZ="{z}" SizeC="1" SizeT="{t}" PhysicalSizeX="250" PhysicalSizeXUnit="nm" '
           f'PhysicalSizeY="0.25" PhysicalSizeZ="0.002" PhysicalSizeZUnit="mm">'
           f'<Channel ID="Channel:0:0" SamplesPerPixel="1"/>{tiffdata}</Pixels></Image></OME>')
    for i in range(t):
        desc = xml if i == 0 else (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
                                   f'UUID="{uuids[i]}"><BinaryOnly MetadataFile="{names[0]}" UUID="{uuids[0]}"/></OME>')
        tifffile.imwrite(os.path.join(folder, names[i]), data[i], description=desc, metadata=None, **kwargs)


def overwrite_segment(path, page, segment):
    # Garbage over one strip or tile of one page: a reader that decodes it must fail, one that skips it must not notice.
    with tifffile.TiffFile(path) as t:
        offset, count = t.pages[page].dataoffsets[segment], t.pages[page].databytecounts[segment]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * count)


def cut_after_first_ifd(path):
    # ImageJ's layout for stacks over 4 GiB, made small: the first IFD's "next IFD" pointer set to 0, so the file has
    # one page and the description's images= planes follow its data (tifffile writes ImageJ planes back to back).
    with tifffile.TiffFile(path) as t:
        assert t.tiff.version == 42 and t.byteorder == "<", "classic little-endian only"
        first = t.pages[0].offset
    with open(path, "r+b") as f:
        f.seek(first)
        n = int.from_bytes(f.read(2), "little")
        f.seek(first + 2 + 12 * n)
        f.write((0).to_bytes(4, "little"))
    with tifffile.TiffFile(path) as t:
        assert len(t.pages) == 1 and t.is_imagej, path


def main():
    for c in json.load(open(sys.argv[1])):
        data = np.load(c["data"]).reshape(c["shape"]) if "data" in c else random_data(c["dtype"], tuple(c["shape"]), c["seed"])
        kwargs = c.get("kwargs") or {}
        if "resolution" in kwargs:
            kwargs["resolution"] = tuple(kwargs["resolution"])
        writer = c["writer"]
        if writer in ("tifffile", "series", "omefiles") and "photometric" not in kwargs:
            kwargs["photometric"] = "minisblack"   # else tifffile takes a leading axis of 3 or 4 for RGB planes
        single_ifd = kwargs.pop("single_ifd", False)
        corrupt = kwargs.pop("corrupt", None)
        if writer == "tifffile":
            tifffile.imwrite(c["file"], data, **kwargs)
            if corrupt is not None:
                overwrite_segment(c["file"], *corrupt)
                np.save(c["npy"], ome_order(data, c["axes"]))
                continue
            if single_ifd:
                cut_after_first_ifd(c["file"])
            back = tifffile.imread(c["file"])   # tifffile reads its own file back as written
            assert np.array_equal(back.reshape(data.shape), data), c["file"]
        elif writer == "pil":
            write_pil(c["file"], data, kwargs)
        elif writer == "series":
            os.makedirs(c["file"], exist_ok=True)
            for i in range(data.shape[0]):
                tifffile.imwrite(os.path.join(c["file"], f"img{i}.tif"), data[i], **kwargs)
        elif writer == "omefiles":
            write_omefiles(c["file"], data, kwargs)
        else:
            raise ValueError(writer)
        np.save(c["npy"], ome_order(data, c["axes"]))


if __name__ == "__main__":
    main()

"""Small HDF5 files for Hdf5File and IlastikProject tests, written and read back with h5py.

Usage:
  h5_small.py sample out.h5            strings, bools, integers, floats, attributes, nested groups
  h5_small.py ilp out.ilp KIND         an ilastik-like project; KIND: good, mismatch (SelectionMatrix [6, 6]
                                       with 7 scales), no-workflow, no-features
  h5_small.py dump file.h5 PATH...     JSON {path: {"kind", "shape", "values" (flattened C order), "children", "attrs"}}
"""
import json
import sys

import h5py
import numpy as np


def sample(path):
    with h5py.File(path, "w") as f:
        f["fixed"] = np.array([b"alpha", b"be", b"", b"gamma_long"], dtype="S10")
        f["fixed_scalar"] = np.bytes_(b"1.4.1b15")
        f["vlen_ascii"] = np.array([b"x", b"", b"yz"], dtype=h5py.string_dtype("ascii"))
        f["vlen_utf8"] = np.array(["Gaussian Smoothing (\u03c3=0.3)", "\u00e9t\u00e9"], dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("vlen_scalar", data="Pixel Classification", dtype=h5py.string_dtype("utf-8"))
        f["bools"] = np.array([[True, False, True], [False, False, True]])
        f["int8_flags"] = np.array([0, 1, -1, 2], dtype="i1")
        f["int32"] = np.array([[11, 2, 0], [-7, 2147483647, -2147483648]], dtype="<i4")
        f["int32_be"] = np.array([1, -2, 3], dtype=">i4")
        f["uint32"] = np.array([0, 1, 4294967295], dtype="<u4")
        f["int64"] = np.array([-(2**62), 2**40, 5], dtype="<i8")
        f["uint8"] = np.array([0, 200, 255], dtype="u1")
        f["float64"] = np.array([0.3, 1.887113094329834, -1e-300, 1e300, 10.0], dtype="<f8")
        f["float32"] = np.array([0.1, -2.5], dtype="<f4")
        f["empty"] = np.zeros((0,), dtype="<f8")
        g = f.create_group("outer")
        for name in ["b", "a", "B", "_options", "Tree_10", "Tree_2", "Tree_1"]:
            g.create_group(name)
        g["a"]["leaf"] = np.array([1.5], dtype="<f8")
        g["a"].create_group("deeper")["deepest"] = np.arange(6, dtype="<i4").reshape(2, 3)
        g.attrs["version"] = np.array([0.1])
        g.attrs["scalar_int"] = np.int32(7)
        g.attrs["vlen_text"] = "h\u00e9llo"
        g.attrs["fixed_text"] = np.bytes_(b"fixed")
        g.attrs["pair"] = np.array([1.0, 2.0])
        f["float64"].attrs["unit"] = "um"
        # Less common encodings, widths and links (the "more" group).
        m = f.create_group("more")
        # ilastik writes UTF-8 bytes into strings tagged ASCII
        m.create_dataset("vlen_ascii_utf8", data=np.array(["\u03c3=0.3".encode(), b"ok"], dtype=object),
                         dtype=h5py.string_dtype("ascii"))
        m["fixed_ascii_utf8"] = np.array(["\u03c3=0.3".encode(), b"x"], dtype="S8")
        m["float64_be"] = np.array([1.5, -2.25, 1e-300], dtype=">f8")
        m["uint16_be"] = np.array([1, 65535], dtype=">u2")
        m["int16"] = np.array([-3, 30000], dtype="<i2")
        m["uint64"] = np.array([0, 2**62], dtype="<u8")
        m["uint64_big"] = np.array([1, 2**63 + 5], dtype="<u8")
        m["float16"] = np.array([1.5, -0.25], dtype="<f2")
        m["null"] = h5py.Empty("<f8")
        m["soft"] = h5py.SoftLink("/outer/a")
        m["dangling"] = h5py.SoftLink("/nowhere")
        m.attrs["be_double"] = np.array([3.25], dtype=">f8")
        m.attrs["float32"] = np.float32(0.5)
        m.attrs["ascii_utf8"] = np.bytes_("\u03c3".encode())


def ilp(path, kind):
    with h5py.File(path, "w") as f:
        f["ilastikVersion"] = np.bytes_(b"1.4.1b15")  # h5py stores a bytes scalar as fixed length; ilastik as vlen
        if kind != "no-workflow":
            f.create_dataset("workflowName", data=b"Pixel Classification", dtype=h5py.string_dtype("ascii"))
        if kind != "no-features":
            fs = f.create_group("FeatureSelections")
            fs["FeatureIds"] = np.array([b"GaussianSmoothing", b"LaplacianOfGaussian", b"GaussianGradientMagnitude",
                                         b"DifferenceOfGaussians", b"StructureTensorEigenvalues",
                                         b"HessianOfGaussianEigenvalues"], dtype="S28")
            fs["Scales"] = np.array([0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0])
            rows = 6
            cols = 6 if kind == "mismatch" else 7
            matrix = np.zeros((rows, cols), dtype=bool)
            matrix[0, 0] = matrix[1, 3] = True
            fs["SelectionMatrix"] = matrix
        pc = f.create_group("PixelClassification")
        pc["LabelNames"] = np.array([b"Label 1", b"Label 2"], dtype="S7")


def value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.generic):
        return v.item() if not isinstance(v, np.bytes_) else bytes(v).decode("utf-8")
    return v


def flat(a):
    a = np.asarray(a)
    return [value(v) for v in a.reshape(-1)]


def dump(path, names):
    out = {}
    with h5py.File(path, "r") as f:
        for name in names:
            obj = f[name]
            attrs = {k: flat(v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Group):
                out[name] = {"kind": "group", "children": sorted(obj.keys()), "attrs": attrs}
            else:
                empty = obj.shape is None  # h5py.Empty: a null dataspace
                out[name] = {"kind": "dataset", "shape": [] if empty else list(obj.shape),
                             "values": [] if empty else flat(obj[()]), "attrs": attrs}
    json.dump(out, sys.stdout)


def main():
    mode = sys.argv[1]
    if mode == "sample":
        sample(sys.argv[2])
    elif mode == "ilp":
        ilp(sys.argv[2], sys.argv[3])
    elif mode == "dump":
        dump(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

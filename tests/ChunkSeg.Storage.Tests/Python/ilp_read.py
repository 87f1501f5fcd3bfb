"""Reads what IlastikProject reads from an ilastik project with h5py (the independent reader); prints JSON.

Usage: ilp_read.py project.ilp
"""
import json
import sys

import h5py


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def main():
    with h5py.File(sys.argv[1], "r") as f:
        fs = f["FeatureSelections"]
        forests = f.get("PixelClassification/ClassifierForests")
        out = {
            "ilastikVersion": text(f["ilastikVersion"][()]),
            "workflowName": text(f["workflowName"][()]),
            "FeatureIds": [text(v) for v in fs["FeatureIds"][()]],
            "Scales": [float(v) for v in fs["Scales"][()]],
            "SelectionMatrix": [[bool(v) for v in row] for row in fs["SelectionMatrix"][()]],
            "ComputeIn2d": [bool(v) for v in fs["ComputeIn2d"][()]] if "ComputeIn2d" in fs else None,
            "feature_names": [text(v) for v in forests["feature_names"][()]]
            if forests is not None and "feature_names" in forests else [],
            "LabelNames": [text(v) for v in f["PixelClassification/LabelNames"][()]],
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

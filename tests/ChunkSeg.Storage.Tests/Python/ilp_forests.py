"""ilastik classifier forests with h5py (the independent reader), and broken variants of a project.

Usage:
  ilp_forests.py dump project.ilp              JSON {"forests": [{Name, ColumnCount, ClassCount, Labels, PredictWeighted,
                                               Trees: [{Name, Topology, Parameters}]}], "known_labels": [...] | null}
  ilp_forests.py make source.ilp out.ilp KIND  a copy of source with KIND: no-classifier, sklearn, no-vigra-attr,
                                               no-known-labels
"""
import json
import shutil
import sys

import h5py
import numpy as np

G = "PixelClassification/ClassifierForests"


def dump(path):
    with h5py.File(path, "r") as f:
        cf = f[G]
        forests = []
        for name in sorted(k for k in cf if k.startswith("Forest")):
            g = cf[name]
            ext = g["_ext_param"]
            forests.append({
                "Name": name,
                "ColumnCount": int(ext["column_count_"][0]),
                "ClassCount": int(ext["class_count_"][0]),
                "Labels": [int(v) for v in ext["labels"][()]],
                "PredictWeighted": bool(g["_options/predict_weighted_"][0]),
                "Trees": [{"Name": t, "Topology": [int(v) for v in g[t]["topology"][()]],
                           "Parameters": [float(v) for v in g[t]["parameters"][()]]}
                          for t in sorted(k for k in g if not k.startswith("_"))],
            })
        known = [int(v) for v in cf["known_labels"][()]] if "known_labels" in cf else None
    json.dump({"forests": forests, "known_labels": known}, sys.stdout)


def make(source, out, kind):
    shutil.copyfile(source, out)
    with h5py.File(out, "r+") as f:
        cf = f[G]
        if kind == "no-classifier":
            del f[G]
        elif kind == "sklearn":
            del cf["pickled_type"]
            cf["pickled_type"] = np.bytes_(b"clazyflow.classifiers.sklearnLazyflowClassifier\nSklearnLazyflowClassifier\np0\n.")
            del f["PixelClassification/ClassifierFactory"]
            f["PixelClassification/ClassifierFactory"] = np.bytes_(
                b"ccopy_reg\n_reconstructor\np0\n(clazyflow.classifiers.sklearnLazyflowClassifier\n"
                b"SklearnLazyflowClassifierFactory\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n(csklearn.ensemble.forest\n.")
        elif kind == "no-vigra-attr":
            del cf["Forest0001"].attrs["vigra_random_forest_version"]
        elif kind == "no-known-labels":
            del cf["known_labels"]
        else:
            raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        make(sys.argv[2], sys.argv[3], sys.argv[4])

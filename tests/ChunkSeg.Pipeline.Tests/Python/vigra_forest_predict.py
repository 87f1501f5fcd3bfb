"""vigra's own RandomForest.predictProbabilities for every forest of an ilastik project.

Usage: vigra_forest_predict.py project.ilp features.npy out_dir
  features.npy: float32 [voxels, F]; writes out_dir/Forest####.npy, float32 [voxels, C] each.
"""
import os
import sys

import h5py
import numpy as np
import vigra


def main():
    project, features, out = sys.argv[1:4]
    x = np.ascontiguousarray(np.load(features), dtype=np.float32)
    with h5py.File(project, "r") as f:
        names = sorted(k for k in f["PixelClassification/ClassifierForests"] if k.startswith("Forest"))
    for name in names:
        rf = vigra.learning.RandomForest(project, "/PixelClassification/ClassifierForests/" + name)
        np.save(os.path.join(out, name + ".npy"), rf.predictProbabilities(x).astype(np.float32))


if __name__ == "__main__":
    main()

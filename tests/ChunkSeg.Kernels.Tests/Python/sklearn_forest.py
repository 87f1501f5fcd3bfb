#!/usr/bin/python3
"""Training data and scikit-learn's RandomForestClassifier as the independent reference for ForestTrainer.

Usage: sklearn_forest.py MODE OUTDIR SEED [DATA_3D.h5]
  MODE blobs: make_classification, 3 overlapping classes in 30 dims, 3000 training / 2000 test samples.
  MODE image: per-voxel features of ilastik's Data_3D.h5 (64^3, scipy.ndimage filters); truth = a smoothed
              image above its median (class 0, bright) or not (class 1, dark); 4000 sparse labelled voxels
              train, every other voxel is the test set.
Writes OUTDIR/{xtrain,ytrain,xtest,ytest,proba}.npy: float32 features (row-major), int32 class indices, and
sklearn's predict_proba on xtest (n_estimators=100, gini, max_features sqrt, bootstrap) as float64.
"""
import sys
import os
import numpy as np
from sklearn.ensemble import RandomForestClassifier

mode, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)

if mode == "blobs":
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=5000, n_features=30, n_informative=10, n_redundant=5, n_classes=3,
                               n_clusters_per_class=2, class_sep=2.0, random_state=seed)
    x = x.astype(np.float32)
    xtrain, ytrain, xtest, ytest = x[:3000], y[:3000], x[3000:], y[3000:]
elif mode == "image":
    import h5py
    from scipy import ndimage as ndi
    with h5py.File(sys.argv[4], "r") as f:
        img = f["data"][..., 0].astype(np.float32)
    feats = [img]
    for s in (0.7, 1.0, 1.6, 3.5):
        feats.append(ndi.gaussian_filter(img, s))
    for s in (1.0, 1.6, 3.5):
        feats.append(ndi.gaussian_gradient_magnitude(img, s))
        feats.append(ndi.gaussian_laplace(img, s))
    x = np.stack([f.ravel() for f in feats], axis=1).astype(np.float32)
    smooth = ndi.gaussian_filter(img, 2.5)
    y = (smooth <= np.median(smooth)).astype(np.int32).ravel()
    order = rng.permutation(x.shape[0])
    train, test = order[:4000], np.sort(order[4000:])
    xtrain, ytrain, xtest, ytest = x[train], y[train], x[test], y[test]
else:
    raise SystemExit(f"unknown mode {mode}")

rf = RandomForestClassifier(n_estimators=100, criterion="gini", max_features="sqrt", bootstrap=True,
                            random_state=seed, n_jobs=2).fit(xtrain, ytrain)
proba = rf.predict_proba(xtest)
# predict_proba has one column per class seen in ytrain; every class is present in both modes.
assert proba.shape[1] == len(np.unique(y))
for name, a in (("xtrain", np.ascontiguousarray(xtrain, np.float32)), ("ytrain", ytrain.astype(np.int32)),
                ("xtest", np.ascontiguousarray(xtest, np.float32)), ("ytest", ytest.astype(np.int32)),
                ("proba", proba.astype(np.float64))):
    np.save(os.path.join(out, name + ".npy"), a)
print(f"sklearn accuracy {(proba.argmax(1) == ytest).mean():.4f}")

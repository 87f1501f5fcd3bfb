#!/usr/bin/python3
"""Random-forest training and prediction timings of scikit-learn and VIGRA on ChunkSeg's benchmark data.

Usage: forest_reference.py TRAIN_X.npy TRAIN_Y.npy TEST_X.npy TREES REPEATS
TRAIN_X/TEST_X: float32 [samples, features]; TRAIN_Y: int32 class index. Trains a 100-tree forest with
each library (scikit-learn: gini, sqrt features, bootstrap, n_jobs=2; VIGRA: its defaults, as ilastik
trains), then times predicting TEST_X (best of REPEATS). Prints one JSON object (seconds).
"""
import json, sys, time
import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier
import vigra

train_x = np.load(sys.argv[1]).astype(np.float32)
train_y = np.load(sys.argv[2]).astype(np.int64)
test_x = np.load(sys.argv[3]).astype(np.float32)
trees, repeats = int(sys.argv[4]), int(sys.argv[5])


def best(fn):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


t = time.perf_counter()
sk = RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=0).fit(train_x, train_y)
sk_fit = time.perf_counter() - t
sk_predict = best(lambda: sk.predict_proba(test_x))

t = time.perf_counter()
rf = vigra.learning.RandomForest(treeCount=trees)
rf.learnRF(train_x, train_y.astype(np.uint32).reshape(-1, 1))
vigra_fit = time.perf_counter() - t
vigra_predict = best(lambda: rf.predictProbabilities(test_x))

print(json.dumps({"sklearn_fit": sk_fit, "sklearn_predict": sk_predict, "vigra_fit": vigra_fit, "vigra_predict": vigra_predict,
                  "versions": {"sklearn": sklearn.__version__, "vigra": vigra.version}}))

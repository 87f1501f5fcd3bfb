#!/usr/bin/python3
"""Segmentation scores with scikit-learn: the independent reference for `chunkseg evaluate`.

Usage:
  evaluate_reference.py score LABELS.npy REFERENCE.npy [--sparse]
      Prints JSON shaped like `chunkseg evaluate --json`.
      Pixel-wise: the foreground (label != 0) of both, scored by sklearn.metrics jaccard_score, f1_score (Dice),
      precision_score and recall_score; with --sparse only the annotated voxels (reference != 0) are judged, so
      only the recall is known.
      Object-wise: sklearn.metrics.confusion_matrix of the two label images gives every object pair's overlap;
      Jaccard(r, p) = overlap / (|r| + |p| - overlap); a pair matches above 0.5. Each reference object's best
      Jaccard over the predicted objects (0 if none touches it), averaged (with --sparse: the segmentation game's
      jaccard_index_sparse), and the Dice 2J / (1 + J) of that best match, averaged.
"""
import json
import sys

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score, precision_score, recall_score


def score(pred, ref, sparse):
    truth, guess = ref.ravel() != 0, pred.ravel() != 0
    tp = int(np.sum(truth & guess))
    fn = int(np.sum(truth & ~guess))
    if sparse:
        pixels = {"truePositives": tp, "falsePositives": None, "falseNegatives": fn, "trueNegatives": None,
                  "jaccard": None, "dice": None, "precision": None,
                  "recall": float(recall_score(np.ones(int(truth.sum()), bool), guess[truth])) if truth.any() else None}
    else:
        pixels = {"truePositives": tp, "falsePositives": int(np.sum(~truth & guess)), "falseNegatives": fn,
                  "trueNegatives": int(np.sum(~truth & ~guess)),
                  "jaccard": float(jaccard_score(truth, guess)), "dice": float(f1_score(truth, guess)),
                  "precision": float(precision_score(truth, guess)), "recall": float(recall_score(truth, guess))}

    labels = np.union1d(np.unique(ref), np.unique(pred))
    overlap = confusion_matrix(ref.ravel(), pred.ravel(), labels=labels).astype(np.float64)
    ref_size, pred_size = overlap.sum(axis=1), overlap.sum(axis=0)
    rows = [i for i, l in enumerate(labels) if l != 0 and ref_size[i] > 0]
    cols = [j for j, l in enumerate(labels) if l != 0 and pred_size[j] > 0]
    sub = overlap[np.ix_(rows, cols)]
    union = ref_size[rows][:, None] + pred_size[cols][None, :] - sub
    iou = np.divide(sub, union, out=np.zeros_like(sub), where=union > 0)
    matched = int(np.sum(iou > 0.5))
    best = iou.max(axis=1) if len(cols) else np.zeros(len(rows))
    nr, npred = len(rows), len(cols)

    def ratio(a, b):
        return a / b if b > 0 else None

    objects = {"referenceObjects": nr, "predictedObjects": npred, "matched": matched,
               "precision": None if sparse else ratio(matched, npred), "recall": ratio(matched, nr),
               "f1": None if sparse else ratio(2 * matched, nr + npred),
               "jaccard": None if sparse else ratio(matched, nr + npred - matched),
               "meanBestJaccard": float(best.mean()) if nr else None,
               "meanBestDice": float(np.mean(2 * best / (1 + best))) if nr else None}
    return {"sparse": sparse, "pixels": pixels, "objects": objects}


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "score":
        sys.exit(__doc__)
    print(json.dumps(score(np.load(sys.argv[2]), np.load(sys.argv[3]), "--sparse" in sys.argv[4:])))


if __name__ == "__main__":
    main()

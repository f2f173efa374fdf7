"""Rebuild breast_cancer.csv and digits.npz from scikit-learn's bundled copies (provenance;
dlspec does not run this).

breast_cancer: scikit-learn's file starts with its own line ``569,30,malignant,benign``
and codes the class as 0 (malignant) / 1 (benign). This writes the same 569 rows with
named columns and the class spelled out; the numbers are copied as text.

digits: digits.csv.gz (1797 rows of 64 pixels 0..16 and the digit) repackaged losslessly
as digits.npz: x uint8 (1797, 8, 8, 1) and y int64, the image form dlspec reads.

    python examples/data/convert_sklearn.py PATH/TO/sklearn/breast_cancer.csv
    python examples/data/convert_sklearn.py PATH/TO/sklearn/digits.csv.gz
"""

import csv
import gzip
import sys

if sys.argv[1].endswith("digits.csv.gz"):
    import numpy as np

    with gzip.open(sys.argv[1], "rt") as fh:
        rows = np.array([[int(v) for v in line.split(",")] for line in fh], dtype=np.int64)
    assert rows.shape == (1797, 65) and rows[:, :64].max() == 16
    np.savez_compressed("digits.npz", x=rows[:, :64].reshape(-1, 8, 8, 1).astype(np.uint8),
                        y=rows[:, 64])
    sys.exit()

FEATURES = ["radius", "texture", "perimeter", "area", "smoothness", "compactness",
            "concavity", "concave_points", "symmetry", "fractal_dimension"]
HEADER = [f"{kind}_{f}" for kind in ("mean", "se", "worst") for f in FEATURES] + ["diagnosis"]

with open(sys.argv[1], newline="") as fh:
    rows = list(csv.reader(fh))
n, n_features, *classes = rows[0]
assert int(n) == len(rows) - 1 and int(n_features) == 30
with open("breast_cancer.csv", "w", newline="") as out:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for r in rows[1:]:
        w.writerow(r[:30] + [classes[int(r[30])]])

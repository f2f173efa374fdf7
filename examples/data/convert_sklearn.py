"""Rebuild breast_cancer.csv from scikit-learn's bundled copy (provenance, not run by dlspec).

scikit-learn's file starts with its own line ``569,30,malignant,benign`` and
codes the class as 0 (malignant) / 1 (benign). This writes the same 569 rows
with named columns and the class spelled out; the numbers are copied as text.

    python examples/data/convert_sklearn.py PATH/TO/sklearn/breast_cancer.csv
"""

import csv
import sys

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

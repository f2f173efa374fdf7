"""The PyTorch twin of `dlspec train specs/churn.yaml` (used by benchmarks/run.py, workload 3).

Same data (read, split and preprocessed by dlspec's own pipeline, so the rows and
features are identical), same model (11-6-6-1, relu, relu, sigmoid via
BCEWithLogitsLoss), Adam(lr=1e-3, eps=1e-7), batch 10, N epochs, one shuffle
(gather) per epoch and a Python loop over the slices. Prints one JSON line.

    python benchmarks/torch_churn.py DATA.csv [EPOCHS]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    data = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    from dlspec.inputs import load_dataset
    from dlspec.spec.load import load_spec

    t_import = time.perf_counter() - T0
    t = time.perf_counter()
    spec = load_spec(ROOT / "specs" / "churn.yaml", [f"data.source={data}"])
    ds = load_dataset(spec)
    x = torch.from_numpy(ds.x["train"]["features"])
    y = torch.from_numpy(ds.y["train"].astype(np.float32).reshape(-1, 1))
    t_data = time.perf_counter() - t

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(11, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(),
                          nn.Linear(6, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(0)
    n, bs = len(x), spec.train.batch_size
    t = time.perf_counter()
    steps = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        xe, ye = x[perm], y[perm]
        total = 0.0
        for start in range(0, n, bs):
            xb, yb = xe[start:start + bs], ye[start:start + bs]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
            steps += 1
    t_train = time.perf_counter() - t
    with torch.no_grad():
        xt = torch.from_numpy(ds.x["test"]["features"])
        acc = float(((model(xt)[:, 0] > 0).numpy() == (ds.y["test"] == 1)).mean())
    print(json.dumps({"import_s": t_import, "data_s": t_data, "train_s": t_train,
                      "steps": steps, "epochs": epochs, "last_epoch_loss": total / n,
                      "test_accuracy": acc, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

"""What a model is trained to do: one record per task, owning every place the task changes
behaviour (what its output means, how it is scored, what a prediction file holds).

binary: one sigmoid unit, p(class 1); multiclass: one softmax unit per class; regression:
one linear unit per target column. A task is decided by the loss (``LossDef.task``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Task:
    name: str
    words: str            # "a binary classifier"
    classifier: bool

    def scores(self, out: np.ndarray) -> np.ndarray:
        """What metrics read: class probabilities (N, K >= 2), or the regression output."""
        if not self.classifier:
            return out
        return np.concatenate([1 - out, out], axis=1) if out.shape[1] == 1 else out

    def truth(self, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Targets as metrics read them: class indices, or values shaped as the output."""
        return y if self.classifier else y.reshape(out.shape)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("binary", "a binary classifier", True),
    Task("multiclass", "a multi-class classifier", True),
    Task("regression", "a regression model", False),
)}

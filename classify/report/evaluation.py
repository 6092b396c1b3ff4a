"""The test part's figures: scikit-learn's classification report and confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

AVERAGES = ("macro avg", "weighted avg")


@dataclass
class Evaluation:
    """Test-part figures, from scikit-learn's classification_report and confusion_matrix."""

    text: str
    table: dict[str, Any]  # classification_report(output_dict=True)
    labels: list[int]  # encoded classes present in the test part or the predictions
    confusion: np.ndarray
    balanced_accuracy: float = float("nan")  # mean recall over the test part's classes

    @property
    def accuracy(self) -> float:
        return float(self.table["accuracy"])

    @property
    def macro_f1(self) -> float:
        return float(self.table["macro avg"]["f1-score"])

    def summary(self) -> dict[str, float]:
        """Accuracy and the macro/weighted precision, recall and F1."""
        figures = {"accuracy": self.accuracy}
        for average in AVERAGES:
            kind = average.split()[0]
            for metric in ("precision", "recall", "f1-score"):
                figures[f"{kind}_{metric.replace('-score', '')}"] = float(
                    self.table[average][metric]
                )
        return figures

    def per_class(self) -> dict[str, dict[str, float]]:
        return {
            name: values
            for name, values in self.table.items()
            if name not in ("accuracy", *AVERAGES)
        }


def evaluate(y_test: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> Evaluation:
    """The familiar precision/recall report, with class names, on the test part."""
    from sklearn.metrics import balanced_accuracy_score, classification_report, confusion_matrix

    labels = sorted(set(np.unique(y_test).tolist()) | set(np.unique(y_pred).tolist()))
    names = [label_names[i] for i in labels]
    options = {"labels": labels, "target_names": names, "zero_division": 0, "digits": 4}
    return Evaluation(
        text=classification_report(y_test, y_pred, **options),
        table=classification_report(y_test, y_pred, output_dict=True, **options),
        labels=labels,
        confusion=confusion_matrix(y_test, y_pred, labels=labels),
        balanced_accuracy=float(balanced_accuracy_score(y_test, y_pred)),
    )

"""Likely label errors: images whose given label the other images' model disbelieves.

Each image's class probabilities come from a logistic regression that never saw it
(out-of-fold, stratified folds), and cleanlab's `find_label_issues` picks the images
whose given label is unlikely under those probabilities, at its default cut-off
(pruning by the estimated noise rate of each pair of classes). Measured on flowers17
with planted flips: README, section "inspect".

The same model says how well the features separate the classes: where its balanced
accuracy is below USABLE_ACCURACY, the images it disbelieves are mostly its own mistakes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

FOLDS = 5
C = 1.0  # scikit-learn's default; measured no worse than a search on lite0 features
MAX_ITER = 1000
# Below this out-of-fold balanced accuracy the model misreads more than one image in five:
# several times the few per cent of wrong labels a dataset holds, so most images it
# flags would be its mistakes, not wrong labels.
USABLE_ACCURACY = 0.8


@dataclass
class LabelIssue:
    row: int
    given: int  # class index in the file's label_names
    suggested: int
    given_probability: float  # out-of-fold probability of the given label
    suggested_probability: float


@dataclass
class LabelCheck:
    """The likely label errors, and how well the model that found them reads the classes."""

    issues: list[LabelIssue]
    balanced_accuracy: float  # of the out-of-fold predictions: mean recall over classes
    n_classes: int

    def warning(self) -> str | None:
        """One line when the features separate the classes too poorly to trust findings."""
        if self.balanced_accuracy >= USABLE_ACCURACY:
            return None
        return ("warning: these features separate the classes poorly (out-of-fold balanced "
                f"accuracy {self.balanced_accuracy:.2f}, chance {1 / self.n_classes:.2f}; "
                f"usable features reach {USABLE_ACCURACY:.2f}): the findings are unreliable "
                "(most likely label errors are the model's mistakes; near-duplicates and "
                "outliers rest on the same features); try another --backbone")


def out_of_fold_probabilities(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """(N, K) probabilities of the classes present in y (encoded 0..K-1), each row from
    a model fitted without it; the folds shrink to the smallest class's size."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = int(min(FOLDS, np.bincount(y).min()))
    model = LogisticRegression(C=C, max_iter=MAX_ITER)
    with warnings.catch_warnings():
        # A fold that stops at MAX_ITER still ranks the labels well; the run says nothing.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_predict(model, X, y, method="predict_proba",
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=seed))


def label_issues(X: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int) -> list[LabelIssue]:
    """The likely label errors among `rows` (at least two classes of two images each),
    most confident first. `y` holds the file's class indices."""
    return check_labels(X, y, rows, seed).issues


def check_labels(X: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int) -> LabelCheck:
    """label_issues, with the balanced accuracy of the model that found them."""
    from cleanlab.filter import find_label_issues
    from sklearn.metrics import balanced_accuracy_score

    classes, encoded = np.unique(y[rows], return_inverse=True)
    every = len(rows) == len(X)  # then no copy of the features is made
    probabilities = out_of_fold_probabilities(X if every else X[rows], encoded, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cleanlab's notes on tiny classes
        ranked = find_label_issues(encoded, probabilities,
                                   return_indices_ranked_by="self_confidence")
    issues = []
    for position in ranked:
        best = int(probabilities[position].argmax())
        issues.append(LabelIssue(
            row=int(rows[position]), given=int(classes[encoded[position]]),
            suggested=int(classes[best]),
            given_probability=float(probabilities[position, encoded[position]]),
            suggested_probability=float(probabilities[position, best])))
    accuracy = float(balanced_accuracy_score(encoded, probabilities.argmax(axis=1)))
    return LabelCheck(issues, accuracy, len(classes))

"""Evaluation of scores against labels: ROC AUC, PR AUC, recall at a false-positive rate, plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


@dataclass(frozen=True, slots=True)
class Evaluation:
    roc_auc: float
    pr_auc: float
    recall_at_1pct_fpr: float
    positives: int
    negatives: int


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Highest recall whose false-positive rate does not exceed `fpr`."""
    f, t, _ = roc_curve(labels, scores)
    ok = f <= fpr
    return float(t[ok].max()) if ok.any() else 0.0


def evaluate(labels: np.ndarray, scores: np.ndarray) -> Evaluation:
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        raise ValueError("evaluation needs both positive and negative examples")
    return Evaluation(
        roc_auc=float(roc_auc_score(y, scores)),
        pr_auc=float(average_precision_score(y, scores)),
        recall_at_1pct_fpr=recall_at_fpr(y, scores, 0.01),
        positives=int(y.sum()),
        negatives=int((~y).sum()),
    )


def write_plots(
    labels: np.ndarray, curves: dict[str, np.ndarray], out_dir: str | Path, title: str
) -> list[Path]:
    """A ROC curve (one line per model) and a score histogram per model, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y = np.asarray(labels).astype(bool)
    written = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, scores in curves.items():
        f, t, _ = roc_curve(y, scores)
        ax.plot(f, t, label=f"{name} (AUC {roc_auc_score(y, scores):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(f"ROC: {title}")
    ax.legend(loc="lower right")
    path = out / "roc.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    written.append(path)
    for name, scores in curves.items():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        bins = np.linspace(float(np.min(scores)), float(np.max(scores)), 50).tolist()
        ax.hist(scores[~y], bins=bins, alpha=0.6, label="normal")
        ax.hist(scores[y], bins=bins, alpha=0.6, label="attack")
        ax.set_xlabel("anomaly score")
        ax.set_ylabel("records")
        ax.set_yscale("log")
        ax.set_title(f"Scores: {name}, {title}")
        ax.legend()
        path = out / f"scores-{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written

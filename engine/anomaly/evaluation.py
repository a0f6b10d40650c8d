"""Labelled evaluations of the anomaly models: NSL-KDD, and captures labelled benign or attack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.anomaly.features import FeatureTable
from engine.anomaly.metrics import Evaluation, evaluate
from engine.anomaly.model import AnomalyModel, TrainOptions, train_model
from engine.anomaly.nslkdd import categories, read_nslkdd, to_table
from engine.anomaly.training import capture_table


@dataclass(frozen=True, slots=True)
class ModelRun:
    """One model's scores on a labelled set."""

    name: str
    evaluation: Evaluation
    scores: np.ndarray
    train_seconds: float = 0.0
    train_rows: int = 0


def nslkdd_runs(
    folder: str | Path, kinds: Sequence[str], *, seed: int = 0
) -> tuple[np.ndarray, list[ModelRun]]:
    """Train each kind on the normal records of KDDTrain+, score KDDTest+; (labels, runs)."""
    import time

    d = Path(folder)
    train = read_nslkdd(d / "KDDTrain+.txt")
    test = read_nslkdd(d / "KDDTest+.txt")
    cats = categories(train)
    train_table = to_table(train, cats)
    test_table = to_table(test, cats)
    normal = FeatureTable(train_table.values[~train.is_attack], train_table.names)
    labels = test.is_attack
    runs = []
    for kind in kinds:
        t0 = time.perf_counter()
        model = train_model(
            normal, TrainOptions(kind=kind, seed=seed), sources=["KDDTrain+ normal"]
        )
        took = time.perf_counter() - t0
        scores = model.raw_scores(test_table)
        runs.append(ModelRun(kind, evaluate(labels, scores), scores, took, len(normal)))
    return labels, runs


def capture_run(
    model: AnomalyModel, benign: Sequence[str | Path], attack: Sequence[str | Path]
) -> tuple[np.ndarray, ModelRun]:
    """Score every flow of the captures; flows of attack captures count as positives.

    A capture without flows (ARP only, say) adds nothing.
    """
    tables, labels = [], []
    for paths, label in ((benign, False), (attack, True)):
        for p in paths:
            t = capture_table(p, allow_empty=True)
            tables.append(t)
            labels.append(np.full(len(t), label))
    table = FeatureTable.concat(tables)
    y = np.concatenate(labels)
    scores = model.scores(table)
    return y, ModelRun(model.kind, evaluate(y, scores), scores)

"""Anomaly models: training, calibration, the skops file and its checks, the shipped model."""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.anomaly import (
    DEFAULT_MODEL,
    FLOW_MODEL_FEATURES,
    FeatureTable,
    ModelError,
    Scorer,
    TrainOptions,
    load_model,
    save_model,
    train_model,
)
from engine.anomaly.metrics import evaluate, recall_at_fpr

NAMES = ("bytes", "packets", "duration")


def _normal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    packets = rng.integers(2, 40, n).astype(float)
    return np.column_stack([packets * rng.normal(500, 50, n), packets, rng.exponential(2.0, n)])


def _outliers(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    packets = rng.integers(2, 40, n).astype(float)
    return np.column_stack(
        [packets * rng.normal(20_000, 500, n), packets, rng.exponential(200.0, n)]
    )


@pytest.mark.parametrize("kind", ["isolation_forest", "ocsvm"])
def test_models_rank_outliers_above_normal_rows(kind: str) -> None:
    model = train_model(FeatureTable(_normal(3000, 1), NAMES), TrainOptions(kind=kind))
    test = FeatureTable(np.vstack([_normal(500, 2), _outliers(50, 3)]), NAMES)
    labels = np.r_[np.zeros(500), np.ones(50)].astype(bool)
    scores = model.scores(test)
    assert np.all((scores >= 0) & (scores <= 1))
    ev = evaluate(labels, scores)
    assert ev.roc_auc > 0.98 and ev.recall_at_1pct_fpr > 0.9
    # calibration: about `contamination` of the normal rows sit above the 0.5 threshold
    assert np.mean(scores[:500] >= 0.5) < 0.05
    assert model.version.startswith(kind + "-")
    assert model.summary["rows"] == 3000


def test_model_file_round_trips(tmp_path: Path) -> None:
    model = train_model(FeatureTable(_normal(500, 4), NAMES), sources=["a.pcap"])
    path = tmp_path / "m.skops"
    save_model(model, path)
    back = load_model(path, expected_features=NAMES)
    table = FeatureTable(_outliers(20, 5), NAMES)
    assert np.allclose(back.scores(table), model.scores(table))
    assert (back.version, back.features, back.summary) == (model.version, NAMES, model.summary)
    assert back.summary["sources"] == ["a.pcap"]


def test_loading_refuses_other_features(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    save_model(train_model(FeatureTable(_normal(100, 6), NAMES)), path)
    with pytest.raises(ModelError, match=r"do not match .*missing flows; unexpected duration"):
        load_model(path, expected_features=("bytes", "packets", "flows"))
    with pytest.raises(ModelError, match="same names in another order"):
        load_model(path, expected_features=("packets", "bytes", "duration"))
    with pytest.raises(ValueError, match="not trained on Shrike's flow features"):
        Scorer(load_model(path))


def test_loading_refuses_what_is_not_a_shrike_model(tmp_path: Path) -> None:
    import skops.io as sio

    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.skops")
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps({"format": "shrike-anomaly-model"}))
    with pytest.raises(ModelError, match="not a skops model file"):
        load_model(pickled)
    odd = tmp_path / "odd.skops"
    sio.dump({"format": "shrike-anomaly-model", "x": Fraction(1, 3)}, str(odd))
    with pytest.raises(ModelError, match=r"refusing to load types fractions\.Fraction"):
        load_model(odd)
    other = tmp_path / "other.skops"
    sio.dump({"format": "something-else"}, str(other))
    with pytest.raises(ModelError, match="not a Shrike anomaly model"):
        load_model(other)


def test_shipped_model_loads_and_is_small() -> None:
    assert DEFAULT_MODEL.is_file(), "the shipped model is missing: run bench/train_default_model.py"
    assert DEFAULT_MODEL.stat().st_size < 2 * 1024 * 1024
    scorer = Scorer.load()
    assert scorer.model.features == FLOW_MODEL_FEATURES
    assert scorer.model.kind == "isolation_forest"
    assert scorer.model.summary["rows"] > 100 and scorer.model.summary["sources"]


def test_recall_at_fpr() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1], dtype=bool)
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.95])
    assert recall_at_fpr(labels, scores, 0.0) == 0.5
    assert recall_at_fpr(labels, scores, 0.25) == 1.0
    with pytest.raises(ValueError, match="both positive and negative"):
        evaluate(np.ones(3, bool), np.zeros(3))

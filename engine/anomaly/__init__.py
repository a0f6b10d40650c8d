"""The anomaly scorer: scikit-learn models over flow features, stored with skops, scored 0..1."""

from __future__ import annotations

from engine.anomaly.features import FLOW_MODEL_FEATURES, FeatureTable, flow_table
from engine.anomaly.model import (
    MODEL_KINDS,
    AnomalyModel,
    ModelError,
    TrainOptions,
    load_model,
    save_model,
    train_model,
)
from engine.anomaly.scorer import DEFAULT_MODEL, Scorer

__all__ = [
    "DEFAULT_MODEL",
    "FLOW_MODEL_FEATURES",
    "MODEL_KINDS",
    "AnomalyModel",
    "FeatureTable",
    "ModelError",
    "Scorer",
    "TrainOptions",
    "flow_table",
    "load_model",
    "save_model",
    "train_model",
]

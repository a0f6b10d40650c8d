"""Scoring flow records with an anomaly model: a 0..1 score per flow and the features behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.anomaly.features import FLOW_MODEL_FEATURES, flow_table
from engine.anomaly.model import AnomalyModel, load_model
from engine.detectors.base import ip_text
from engine.events import AnomalyScore, FlowKey
from engine.flows import FlowRecords, community_id

#: The model shipped with Shrike, trained on benign traffic by bench/train_default_model.py.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default-flow-model.skops"

_ZMIN = 3.0  # a feature is named as a reason when it is this many deviations from training


class Scorer:
    """Scores flow records; `score` returns AnomalyScores for the flows at or above the threshold."""

    def __init__(self, model: AnomalyModel, *, max_reasons: int = 3) -> None:
        if model.features != FLOW_MODEL_FEATURES:
            raise ValueError("the model was not trained on Shrike's flow features")
        self.model = model
        self.max_reasons = max_reasons

    @classmethod
    def load(cls, path: str | Path | None = None) -> Scorer:
        """Load a flow model (the shipped one by default); features must match Shrike's."""
        return cls(load_model(path or DEFAULT_MODEL, expected_features=FLOW_MODEL_FEATURES))

    @property
    def threshold(self) -> float:
        return 0.5

    def score_array(self, records: FlowRecords) -> np.ndarray:
        if not len(records):
            return np.zeros(0)
        return self.model.scores(flow_table(records))

    def score(self, records: FlowRecords, *, all_flows: bool = False) -> list[AnomalyScore]:
        """AnomalyScores of the anomalous flows (every flow with `all_flows`)."""
        if not len(records):
            return []
        table = flow_table(records)
        scores = self.model.scores(table)
        rows = np.arange(len(records)) if all_flows else np.flatnonzero(scores >= self.threshold)
        if not len(rows):
            return []
        sub = type(table)(table.values[rows], table.names)
        z = self.model.zscores(sub)
        c = records.columns
        out = []
        for k, i in enumerate(rows.tolist()):
            src = ip_text(int(c["src_hi"][i]), int(c["src_lo"][i]))
            dst = ip_text(int(c["dst_hi"][i]), int(c["dst_lo"][i]))
            proto, sport, dport = int(c["proto"][i]), int(c["sport"][i]), int(c["dport"][i])
            key = FlowKey(
                src, sport, dst, dport, proto, community_id(src, dst, proto, sport, dport)
            )
            out.append(
                AnomalyScore(
                    ts=float(c["ts"][i]),
                    flow=key,
                    score=float(scores[i]),
                    threshold=self.threshold,
                    model=self.model.kind,
                    model_version=self.model.version,
                    reasons=self._reasons(z[k], table.values[i]),
                )
            )
        return out

    def _reasons(self, z: np.ndarray, raw: np.ndarray) -> tuple[str, ...]:
        order = np.argsort(-np.abs(z))[: self.max_reasons]
        reasons = []
        for j in order.tolist():
            if abs(z[j]) < _ZMIN:
                break
            side = "above" if z[j] > 0 else "below"
            reasons.append(
                f"{self.model.features[j]}={raw[j]:.6g} far {side} training (z={z[j]:+.1f})"
            )
        return tuple(reasons)

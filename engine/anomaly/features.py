"""Feature tables the anomaly scorer learns from: Shrike's flow features, or any named numeric table.

A `FeatureTable` is a float matrix with a column name per feature. Flow records
give `FLOW_MODEL_FEATURES` (the 64 flow features of docs/flows.md plus the
transport and volume counters); other data sets (NSL-KDD) bring their own
names. Before scaling every value goes through a signed log, sign(x)*log1p(|x|),
so byte counts and rates spanning many orders of magnitude weigh alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.flows import FEATURES, FlowRecords

FLOW_MODEL_FEATURES: tuple[str, ...] = (
    "proto",
    "duration",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    *FEATURES,
)


@dataclass(frozen=True, slots=True)
class FeatureTable:
    """Rows of numeric features, one named column each."""

    values: np.ndarray  # float64, shape (rows, len(names))
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise ValueError(
                f"feature table has {self.values.shape} values for {len(self.names)} names"
            )

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @classmethod
    def concat(cls, tables: list[FeatureTable]) -> FeatureTable:
        if not tables:
            raise ValueError("no feature tables to join")
        names = tables[0].names
        for t in tables[1:]:
            if t.names != names:
                raise ValueError("feature tables with different columns cannot be joined")
        return cls(np.concatenate([t.values for t in tables]), names)


def flow_table(records: FlowRecords) -> FeatureTable:
    """The model features of flow records, in FLOW_MODEL_FEATURES order."""
    c = records.columns
    n = len(records)
    values = np.empty((n, len(FLOW_MODEL_FEATURES)), dtype=np.float64)
    for k, name in enumerate(FLOW_MODEL_FEATURES):
        values[:, k] = c[name]
    return FeatureTable(values, FLOW_MODEL_FEATURES)


def signed_log1p(values: np.ndarray) -> np.ndarray:
    out = np.log1p(np.abs(values))
    out *= np.sign(values)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

"""Training a flow model from captures taken as normal traffic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine.anomaly.features import FLOW_MODEL_FEATURES, FeatureTable, flow_table
from engine.anomaly.model import AnomalyModel, TrainOptions, train_model
from engine.flows import FlowTableConfig
from engine.pipeline import iter_flow_records
from engine.sources import open_source


def capture_table(
    path: str | Path, flow_config: FlowTableConfig | None = None, *, allow_empty: bool = False
) -> FeatureTable:
    """The flow-feature table of every flow in one capture (no flows: an error unless allowed)."""
    tables = []
    with open_source("pcap", str(path)) as src:
        for records in iter_flow_records(src, flow_config):
            tables.append(flow_table(records))
    if not tables:
        if allow_empty:
            return FeatureTable(np.zeros((0, len(FLOW_MODEL_FEATURES))), FLOW_MODEL_FEATURES)
        raise ValueError(f"{path}: no flows in this capture")
    return FeatureTable.concat(tables)


def train_from_captures(
    paths: Sequence[str | Path],
    options: TrainOptions | None = None,
    *,
    flow_config: FlowTableConfig | None = None,
    on_capture: Callable[[str, int], None] | None = None,
) -> AnomalyModel:
    """Fit a model on the flows of captures taken as normal."""
    tables = []
    for p in paths:
        t = capture_table(p, flow_config)
        if on_capture is not None:
            on_capture(str(p), len(t))
        tables.append(t)
    return train_model(FeatureTable.concat(tables), options, sources=[Path(p).name for p in paths])

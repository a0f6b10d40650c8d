"""The embedded flow store: rows made column by column, as the per-flow dicts give them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.flows import FEATURES, FlowRecords
from engine.pipeline import iter_flow_records
from engine.sample import write_sample_pcap
from engine.sources import open_source
from engine.store import _FLOW_COLUMNS, FlowStore, flow_rows


def _records(tmp_path: Path) -> FlowRecords:
    write_sample_pcap(tmp_path / "sample.pcap")
    with open_source("pcap", str(tmp_path / "sample.pcap")) as source:
        return FlowRecords.concat(list(iter_flow_records(source)))


def _as_dicts(records: FlowRecords, source: str) -> list[tuple[object, ...]]:
    """The rows as `FlowRecords.to_dicts` spells each flow."""
    # the table's columns before `source` and `features` are `to_dicts` keys
    keys = [name for name, _ in _FLOW_COLUMNS[:-2]]
    return [
        (
            *(r[k] for k in keys),
            source,
            json.dumps({k: r[k] for k in FEATURES}, separators=(",", ":")),
        )
        for r in records.to_dicts()
    ]


def _python_rounded(records: FlowRecords, rows: list[tuple[object, ...]]) -> None:
    """The stored times and features are Python's `round(v, 6)` of the raw columns
    (spelled by `repr`, so NaN matches NaN and -0.0 stays apart from 0.0)."""
    at = {name: k for k, (name, _) in enumerate(_FLOW_COLUMNS)}
    for name in ("ts", "duration"):
        raw = records.columns[name].tolist()
        assert [repr(r[at[name]]) for r in rows] == [repr(round(v, 6)) for v in raw]
    stored = [json.loads(str(r[at["features"]])) for r in rows]
    for name in FEATURES:
        raw = records.columns[name].tolist()
        want = [round(v, 6) if isinstance(v, float) else v for v in raw]
        assert [repr(f[name]) for f in stored] == [repr(v) for v in want], name


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x == y
        assert [type(v) for v in x] == [type(v) for v in y]


def test_rows_are_the_flows_as_their_dicts_spell_them(tmp_path: Path) -> None:
    records = _records(tmp_path)
    assert len(records) > 100
    rows = flow_rows(records, "sample.pcap")
    _same(rows, _as_dicts(records, "sample.pcap"))
    _python_rounded(records, rows)


@pytest.mark.parametrize(
    "values",
    [
        # ties at the seventh place, where scaling by a million rounds either way
        [3.5e-06, 1.25e-05, 3.95e-05, 2.5e-6, 0.1234565, 1234.0000025],
        # beyond 2**50 millionths, and a small negative rounding to -0.0
        [1e12 + 0.1234567, 4.5e9 + 1e-7, -1e-9, -0.0, 0.0, 3.25],
        [float("nan"), float("inf"), 1.0, 2.0, 3.0, 4.0],  # JSON spells these itself
    ],
)
def test_rounding_and_spelling_match_the_dicts_at_the_edges(
    tmp_path: Path, values: list[float]
) -> None:
    records = _records(tmp_path)
    n = len(values)
    cut = FlowRecords(
        columns={k: v[:n].copy() for k, v in records.columns.items()},
        history=records.history[:n],
    )
    cut.columns["iat_mean"][:] = values
    cut.columns["duration"][:] = [abs(v) if np.isfinite(v) else 1.0 for v in values]
    rows = flow_rows(cut, "x")
    _same(rows, _as_dicts(cut, "x"))
    _python_rounded(cut, rows)


def test_written_flows_read_back(tmp_path: Path) -> None:
    records = _records(tmp_path)
    with FlowStore(tmp_path / "data") as store:
        assert store.write_flows(records, source="sample.pcap") == len(records)
        assert store.count_flows(source="sample.pcap") == len(records)
        path = store.path
    db = sqlite3.connect(path)
    first = next(records.to_dicts())
    ts, src, features = db.execute(
        "SELECT ts, src_ip, features FROM flows ORDER BY id LIMIT 1"
    ).fetchone()
    assert (ts, src) == (first["ts"], first["src_ip"])
    assert json.loads(features) == {k: first[k] for k in FEATURES}


def test_flows_sharing_feature_values_are_spelled_alike_and_others_apart(
    tmp_path: Path,
) -> None:
    # each distinct row of feature values is written once and shared
    records = _records(tmp_path)
    cut = FlowRecords(
        columns={k: v[:6].copy() for k, v in records.columns.items()},
        history=records.history[:6],
    )
    for name in cut.columns:
        if name not in ("src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport"):
            cut.columns[name][1] = cut.columns[name][0]
    cut.columns["duration"][2] = cut.columns["duration"][0] + 0.5
    rows = flow_rows(cut, "x")
    _same(rows, _as_dicts(cut, "x"))
    assert rows[0][-1] == rows[1][-1]
    assert rows[0][-1] != rows[2][-1]

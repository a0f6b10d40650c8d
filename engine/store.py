"""The embedded store: flow records in a local SQLite database (WAL, batched transactions).

Used when no Elasticsearch is configured, so `shrike run` works on a machine with
nothing else installed. Verdicts live in the same file, in tables that
`engine.sinks.store.VerdictStore` owns. The database lives in the data directory: `--data-dir`,
else `$SHRIKE_DATA_DIR`, else `$XDG_DATA_HOME/shrike` (`~/.local/share/shrike`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from engine.flows import FEATURES, FlowRecords, group

SCHEMA_VERSION = 1

_FLOW_COLUMNS = (
    ("ts", "REAL"),
    ("src_ip", "TEXT"),
    ("src_port", "INTEGER"),
    ("dst_ip", "TEXT"),
    ("dst_port", "INTEGER"),
    ("proto", "TEXT"),
    ("community_id", "TEXT"),
    ("duration", "REAL"),
    ("orig_pkts", "INTEGER"),
    ("resp_pkts", "INTEGER"),
    ("orig_ip_bytes", "INTEGER"),
    ("resp_ip_bytes", "INTEGER"),
    ("conn_state", "TEXT"),
    ("history", "TEXT"),
    ("end_reason", "TEXT"),
    ("source", "TEXT"),
    ("features", "TEXT"),
)


# The features as one JSON object per flow, values as `FlowRecords.to_dicts` gives
# them (floats rounded to 6 places); `%s` writes a finite float as JSON does.
_FEATURES_JSON = "{" + ",".join(f'"{name}":%s' for name in FEATURES) + "}"


def _texts(values: np.ndarray) -> list[Any]:
    """Each float as JSON writes it, spelled once per distinct value (flow features
    repeat: zeros, small counts); other values as they are, for `%s`."""
    if values.dtype.kind != "f" or np.signbit(values).any():  # -0.0 sorts with 0.0
        return values.tolist()
    distinct, at = np.unique(values, return_inverse=True)
    return np.array([repr(v) for v in distinct.tolist()], dtype=object)[at].tolist()


def flow_rows(records: FlowRecords, source: str) -> list[tuple[Any, ...]]:
    """The `flows` table rows of `records`: the values of `FlowRecords.to_dicts`, made
    column by column (with a dict per flow, storing a flow took about 170 us)."""
    if not len(records):
        return []
    features = list(records.rounded_features().values())
    if all(
        f.dtype.kind in "iu" or (f.dtype.kind == "f" and np.isfinite(f).all()) for f in features
    ):
        # flows repeat their feature values (lone SYNs are all alike): each distinct
        # row of values is written once, told apart by the values' exact bits
        first, at = group(
            *(
                f.astype(np.int64 if f.dtype.kind in "iu" else np.float64).view(np.uint64)
                for f in features
            )
        )
        texts = [_texts(f[first]) for f in features]
        distinct = [_FEATURES_JSON % values for values in zip(*texts, strict=True)]
        feats = np.array(distinct, dtype=object)[at].tolist()
    else:  # NaN or infinity (or a column of another kind): JSON's own spelling
        feats = [
            json.dumps(dict(zip(FEATURES, values, strict=True)), separators=(",", ":"))
            for values in zip(*(f.tolist() for f in features), strict=True)
        ]
    shown = records.display_columns()
    # the table's columns before `source` and `features` are fields of the same name
    columns = [shown[name] for name, _ in _FLOW_COLUMNS[:-2]]
    return list(zip(*columns, [source] * len(records), feats, strict=True))


class StoreError(Exception):
    """The embedded store cannot be opened or written; the message names the database file."""


def database_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The store's database file; flows and verdicts share it."""
    return (Path(data_dir) if data_dir is not None else default_data_dir()) / "shrike.db"


def default_data_dir() -> Path:
    env = os.environ.get("SHRIKE_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shrike"


class FlowStore:
    """Append-mostly store of flow records; one transaction per written batch."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.path = database_path(self.data_dir)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._create()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the embedded store: {exc}") from exc

    def _create(self) -> None:
        cols = ", ".join(f"{n} {t}" for n, t in _FLOW_COLUMNS)
        with self._db:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS flows (id INTEGER PRIMARY KEY, {cols})")
            self._db.execute("CREATE INDEX IF NOT EXISTS flows_ts ON flows(ts)")
            self._db.execute("CREATE INDEX IF NOT EXISTS flows_src ON flows(src_ip)")
            self._db.execute("CREATE INDEX IF NOT EXISTS flows_cid ON flows(community_id)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def write_flows(self, records: FlowRecords, *, source: str) -> int:
        rows = flow_rows(records, source)
        names = ", ".join(n for n, _ in _FLOW_COLUMNS)
        marks = ", ".join("?" for _ in _FLOW_COLUMNS)
        try:
            with self._db:
                self._db.executemany(f"INSERT INTO flows ({names}) VALUES ({marks})", rows)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write flows: {exc}") from exc
        return len(rows)

    def count_flows(self, *, source: str | None = None) -> int:
        if source is None:
            return int(self._db.execute("SELECT COUNT(*) FROM flows").fetchone()[0])
        q = "SELECT COUNT(*) FROM flows WHERE source = ?"
        return int(self._db.execute(q, (source,)).fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FlowStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

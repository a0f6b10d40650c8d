"""NSL-KDD as a feature table: its 41 connection features, symbolic ones one-hot encoded.

Files are the KDDTrain+/KDDTest+ text files: 41 comma-separated features, the
label and a difficulty level per line. Symbolic features (protocol_type,
service, flag) become one column per value seen in the training file, so the
test table has exactly the training columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.anomaly.features import FeatureTable

FIELDS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)  # fmt: skip
SYMBOLIC = ("protocol_type", "service", "flag")


class NslKddError(ValueError):
    """A line of an NSL-KDD file that cannot be read, with its file and line number."""


@dataclass(frozen=True, slots=True)
class NslKddData:
    numeric: np.ndarray  # (rows, numeric fields)
    symbolic: list[tuple[str, str, str]]
    labels: list[str]

    @property
    def is_attack(self) -> np.ndarray:
        return np.array([label != "normal" for label in self.labels])


NUMERIC = tuple(f for f in FIELDS if f not in SYMBOLIC)
_SYM_INDEX = tuple(FIELDS.index(f) for f in SYMBOLIC)
_NUM_INDEX = tuple(FIELDS.index(f) for f in NUMERIC)


def read_nslkdd(path: str | Path) -> NslKddData:
    p = Path(path)
    try:
        handle = p.open(newline="", encoding="ascii")
    except OSError as exc:
        raise NslKddError(f"{p}: cannot read: {exc.strerror}") from exc
    numeric: list[list[float]] = []
    symbolic: list[tuple[str, str, str]] = []
    labels: list[str] = []
    with handle:
        for lineno, row in enumerate(csv.reader(handle), 1):
            if not row:
                continue
            if len(row) not in (42, 43):
                raise NslKddError(f"{p}:{lineno}: expected 42 or 43 fields, found {len(row)}")
            try:
                numeric.append([float(row[i]) for i in _NUM_INDEX])
            except ValueError:
                bad = next(i for i in _NUM_INDEX if not _is_number(row[i]))
                raise NslKddError(
                    f"{p}:{lineno}: field {FIELDS[bad]} is not a number: {row[bad]!r}"
                ) from None
            symbolic.append((row[_SYM_INDEX[0]], row[_SYM_INDEX[1]], row[_SYM_INDEX[2]]))
            labels.append(row[41])
    if not labels:
        raise NslKddError(f"{p}: no records")
    return NslKddData(np.asarray(numeric, dtype=np.float64), symbolic, labels)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def categories(data: NslKddData) -> list[tuple[str, ...]]:
    """The values of each symbolic field, sorted (from the training data)."""
    return [tuple(sorted({s[k] for s in data.symbolic})) for k in range(len(SYMBOLIC))]


def to_table(data: NslKddData, cats: list[tuple[str, ...]]) -> FeatureTable:
    """Numeric fields then one 0/1 column per symbolic value in `cats` (unseen values: all 0)."""
    n = len(data.labels)
    parts = [data.numeric]
    names = list(NUMERIC)
    for k, field in enumerate(SYMBOLIC):
        index = {v: j for j, v in enumerate(cats[k])}
        onehot = np.zeros((n, len(cats[k])))
        for i, sym in enumerate(data.symbolic):
            j = index.get(sym[k])
            if j is not None:
                onehot[i, j] = 1.0
        parts.append(onehot)
        names.extend(f"{field}={v}" for v in cats[k])
    return FeatureTable(np.hstack(parts), tuple(names))

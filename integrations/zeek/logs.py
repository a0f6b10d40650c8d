"""Reading Zeek logs (TSV with its `#fields` header, or JSON lines) into dicts of typed values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class ZeekLogError(ValueError):
    """A Zeek log that cannot be read, with the file and line."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: {message}")


_COUNT_TYPES = {"count", "int", "port"}
_FLOAT_TYPES = {"double", "interval", "time"}


@dataclass(frozen=True, slots=True)
class ZeekLog:
    path: str
    fields: tuple[str, ...]
    records: list[dict[str, object]]


def _convert(value: str, ztype: str, unset: str, empty: str) -> object:
    if value == unset:
        return None
    if ztype in _COUNT_TYPES:
        try:
            return int(value)
        except ValueError:
            return value  # canonified values (XXXX) stay text
    if ztype in _FLOAT_TYPES:
        try:
            return float(value)
        except ValueError:
            return value
    if ztype.startswith(("set[", "vector[")):
        return [] if value == empty else value.split(",")
    if ztype == "bool":
        return value == "T"
    return value


def read_log(path: str | Path) -> ZeekLog:
    """Read a Zeek log in TSV or JSON-lines form."""
    p = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ZeekLogError(p, 0, f"cannot read: {exc.strerror}") from exc
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if first.lstrip().startswith("{"):
        return _read_json(p, lines)
    return _read_tsv(p, lines)


def _read_json(path: str, lines: list[str]) -> ZeekLog:
    records: list[dict[str, object]] = []
    fields: dict[str, None] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ZeekLogError(path, no, f"bad JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(rec, dict):
            raise ZeekLogError(path, no, "a JSON log line must be an object")
        fields.update(dict.fromkeys(rec))
        records.append(rec)
    return ZeekLog(path, tuple(fields), records)


def _read_tsv(path: str, lines: list[str]) -> ZeekLog:
    sep, unset, empty = "\t", "-", "(empty)"
    fields: list[str] | None = None
    types: list[str] | None = None
    records: list[dict[str, object]] = []
    for no, line in enumerate(lines, 1):
        if line.startswith("#"):
            if line.startswith("#separator"):
                raw = line.split(" ", 1)[1].strip()
                sep = raw.encode().decode("unicode_escape")
            elif line.startswith("#unset_field"):
                unset = line.split(sep, 1)[1]
            elif line.startswith("#empty_field"):
                empty = line.split(sep, 1)[1]
            elif line.startswith("#fields"):
                fields = line.split(sep)[1:]
            elif line.startswith("#types"):
                types = line.split(sep)[1:]
            continue
        if not line.strip():
            continue
        if fields is None:
            raise ZeekLogError(path, no, "data line before the #fields header")
        values = line.split(sep)
        if len(values) != len(fields):
            raise ZeekLogError(
                path, no, f"{len(values)} values for {len(fields)} fields (separator {sep!r})"
            )
        ztypes = types if types and len(types) == len(fields) else ["string"] * len(fields)
        records.append(
            {
                f: _convert(v, t, unset, empty)
                for f, v, t in zip(fields, values, ztypes, strict=True)
            }
        )
    if fields is None:
        raise ZeekLogError(path, 1, "no #fields header: not a Zeek TSV log")
    return ZeekLog(path, tuple(fields), records)


def iter_conn_tuples(
    log: ZeekLog,
) -> Iterator[tuple[tuple[str, int, str, int, str], dict[str, object]]]:
    """(5-tuple, record) for each conn.log record: (orig_h, orig_p, resp_h, resp_p, proto)."""
    for rec in log.records:
        key = (
            str(rec["id.orig_h"]),
            int(rec["id.orig_p"]),  # type: ignore[call-overload]
            str(rec["id.resp_h"]),
            int(rec["id.resp_p"]),  # type: ignore[call-overload]
            str(rec["proto"]),
        )
        yield key, rec

"""Verdicts in the embedded store: tables `verdicts` and `verdict_techniques` in the
same SQLite database as the flow records (WAL, one transaction per batch).

`StoreSink` writes; `VerdictStore.query` answers `shrike alerts`. Each row keeps
the ECS document as JSON beside the columns queries filter on (time, severity,
rule, source address, and ATT&CK technique through its own indexed table).
Retention deletes the oldest verdicts by age (time stored, not packet time, so
an old capture is kept as long as a live one) or by stored bytes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ecs import DEFAULT_CONTEXT, EcsContext, message, rule_fields
from engine.events import SEVERITIES, Verdict
from engine.sinks.base import EncodedVerdict, Sink, encode
from engine.sinks.config import StoreConfig
from engine.sinks.deadletter import DeadLetter, DeadLetterFile
from engine.sinks.errors import VerdictStoreError
from engine.store import database_path

log = logging.getLogger(__name__)

VERDICT_SCHEMA_VERSION = 1
_PRUNE_EVERY = 60.0  # seconds between retention checks while writing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    ts REAL NOT NULL,
    stored_at REAL NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    rule_id TEXT,
    rule_name TEXT,
    src_ip TEXT,
    src_port INTEGER,
    dst_ip TEXT,
    dst_port INTEGER,
    transport TEXT,
    community_id TEXT,
    host TEXT,
    techniques TEXT NOT NULL,
    message TEXT NOT NULL,
    size INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_ts ON verdicts(ts);
CREATE INDEX IF NOT EXISTS verdicts_severity ON verdicts(severity_rank, ts);
CREATE INDEX IF NOT EXISTS verdicts_rule ON verdicts(rule_id, ts);
CREATE INDEX IF NOT EXISTS verdicts_src ON verdicts(src_ip, ts);
CREATE TABLE IF NOT EXISTS verdict_techniques (
    verdict_id INTEGER NOT NULL,
    technique TEXT NOT NULL,
    PRIMARY KEY (verdict_id, technique)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verdict_techniques_technique
    ON verdict_techniques(technique, verdict_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = [
    "id",
    "doc_id",
    "ts",
    "stored_at",
    "severity",
    "severity_rank",
    "label",
    "score",
    "rule_id",
    "rule_name",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "transport",
    "community_id",
    "host",
    "techniques",
    "message",
    "size",
    "doc",
]


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters of `shrike alerts`; None means no filter. Times are seconds since the epoch."""

    since: float | None = None
    until: float | None = None
    min_severity: str | None = None
    technique: str | None = None  # T1059 also finds T1059.001
    src_ip: str | None = None
    dst_ip: str | None = None
    label: str | None = None
    rule_id: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """One row of the verdicts table, with its ECS document."""

    ts: float
    severity: str
    label: str
    score: float
    rule_id: str | None
    rule_name: str | None
    src_ip: str | None
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    transport: str | None
    host: str | None
    techniques: tuple[str, ...]
    message: str
    doc: dict[str, Any]


class VerdictStore:
    """The verdict tables of the store's database file."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = database_path(data_dir)
        self._now = wall_clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('verdict_schema_version', ?)",
                (str(VERDICT_SCHEMA_VERSION),),
            )
        except (OSError, sqlite3.Error) as exc:
            raise VerdictStoreError(
                str(self.path), f"cannot open the embedded store: {exc}"
            ) from exc

    # writing ------------------------------------------------------------------

    def insert(self, verdicts: Sequence[Verdict], docs: Sequence[EncodedVerdict]) -> int:
        """Insert verdicts with their encoded documents in one transaction."""
        if not verdicts:
            return 0
        now = self._now()
        rows: list[tuple[Any, ...]] = []
        tech_rows: list[tuple[int, str]] = []
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                next_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM verdicts").fetchone()[0])
                for verdict, enc in zip(verdicts, docs, strict=True):
                    next_id += 1
                    rows.append(_row(next_id, verdict, enc, now))
                    tech_rows += [(next_id, t) for t in dict.fromkeys(verdict.techniques)]
                marks = ", ".join("?" for _ in _COLUMNS)
                db.executemany(
                    f"INSERT INTO verdicts ({', '.join(_COLUMNS)}) VALUES ({marks})", rows
                )
                db.executemany("INSERT INTO verdict_techniques VALUES (?, ?)", tech_rows)
                added = sum(len(enc.body) for enc in docs)
                db.execute(
                    "INSERT INTO meta VALUES ('verdict_bytes', ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                    (added,),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise VerdictStoreError(str(self.path), f"cannot write verdicts: {exc}") from exc
        return len(rows)

    def prune(self, config: StoreConfig) -> int:
        """Apply retention; returns how many verdicts were deleted."""
        deleted = 0
        try:
            if config.retention_days > 0:
                cutoff = self._now() - config.retention_days * 86400.0
                row = self._db.execute(
                    "SELECT MAX(id) FROM verdicts WHERE id < "
                    "(SELECT COALESCE(MIN(id), 1 << 62) FROM verdicts WHERE stored_at >= ?)",
                    (cutoff,),
                ).fetchone()
                if row[0] is not None:
                    deleted += self._delete_through(int(row[0]))
            if config.retention_mb > 0:
                limit = int(config.retention_mb * 1024 * 1024)
                excess = self.stored_bytes() - limit
                if excess > 0:
                    # delete down to 90% of the limit so pruning does not run on every batch
                    excess += limit // 10
                    total, last = 0, None
                    for vid, size in self._db.execute("SELECT id, size FROM verdicts ORDER BY id"):
                        total += size
                        last = vid
                        if total >= excess:
                            break
                    if last is not None:
                        deleted += self._delete_through(int(last))
        except sqlite3.Error as exc:
            raise VerdictStoreError(str(self.path), f"cannot apply retention: {exc}") from exc
        return deleted

    def _delete_through(self, last_id: int) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            freed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM verdicts WHERE id <= ?", (last_id,)
            ).fetchone()
            db.execute("DELETE FROM verdict_techniques WHERE verdict_id <= ?", (last_id,))
            db.execute("DELETE FROM verdicts WHERE id <= ?", (last_id,))
            db.execute(
                "UPDATE meta SET value = MAX(CAST(value AS INTEGER) - ?, 0) "
                "WHERE key = 'verdict_bytes'",
                (int(freed[1]),),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return int(freed[0])

    # reading ------------------------------------------------------------------

    def stored_bytes(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'verdict_bytes'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def query(self, q: AlertQuery) -> list[StoredVerdict]:
        """Matching verdicts, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if q.since is not None:
            where.append("v.ts >= ?")
            params.append(q.since)
        if q.until is not None:
            where.append("v.ts < ?")
            params.append(q.until)
        if q.min_severity is not None:
            where.append("v.severity_rank >= ?")
            params.append(SEVERITIES.index(q.min_severity))
        if q.src_ip is not None:
            where.append("v.src_ip = ?")
            params.append(q.src_ip)
        if q.dst_ip is not None:
            where.append("v.dst_ip = ?")
            params.append(q.dst_ip)
        if q.label is not None:
            where.append("v.label = ?")
            params.append(q.label)
        if q.rule_id is not None:
            where.append("v.rule_id = ?")
            params.append(q.rule_id)
        if q.technique is not None:
            where.append(
                "v.id IN (SELECT verdict_id FROM verdict_techniques "
                "WHERE technique = ? OR technique GLOB ?)"
            )
            params += [q.technique, f"{q.technique}.*"]
        sql = "SELECT v.* FROM verdicts v"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY v.ts DESC, v.id DESC LIMIT ?"
        params.append(q.limit)
        try:
            cur = self._db.execute(sql, params)
            names = [c[0] for c in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            raise VerdictStoreError(str(self.path), f"cannot query verdicts: {exc}") from exc
        return [
            StoredVerdict(
                ts=r["ts"],
                severity=r["severity"],
                label=r["label"],
                score=r["score"],
                rule_id=r["rule_id"],
                rule_name=r["rule_name"],
                src_ip=r["src_ip"],
                src_port=r["src_port"],
                dst_ip=r["dst_ip"],
                dst_port=r["dst_port"],
                transport=r["transport"],
                host=r["host"],
                techniques=tuple(r["techniques"].split()),
                message=r["message"],
                doc=json.loads(r["doc"]),
            )
            for r in rows
        ]

    def close(self) -> None:
        self._db.close()


def _row(vid: int, v: Verdict, enc: EncodedVerdict, now: float) -> tuple[Any, ...]:
    flow = v.flow
    rule = rule_fields(v)
    return (
        vid,
        enc.doc_id,
        v.ts,
        now,
        v.severity,
        SEVERITIES.index(v.severity),
        v.label,
        float(v.score),
        rule.get("id"),
        rule.get("name"),
        flow.src_ip if flow else v.host,
        flow.src_port if flow else None,
        flow.dst_ip if flow else None,
        flow.dst_port if flow else None,
        flow.transport if flow else None,
        flow.community_id if flow else None,
        v.host,
        " ".join(dict.fromkeys(v.techniques)),
        message(v),
        len(enc.body),
        enc.body,
    )


class StoreSink(Sink):
    """Verdicts into the embedded store, committed in batches.

    A batch is committed once `batch_verdicts` are waiting or `flush_interval`
    seconds have passed since the oldest arrived (checked on each write), and on
    flush. A batch SQLite refuses (disk full, a lock held too long) is retried
    three times, then written to the dead-letter file.
    """

    name = "store"

    def __init__(
        self,
        config: StoreConfig,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        dead_letter: DeadLetterFile,
        context: EcsContext = DEFAULT_CONTEXT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.config = config
        self.dead_letter = dead_letter
        self.store = VerdictStore(data_dir, wall_clock=wall_clock)
        self._context = context
        self._clock = clock
        self._sleep = sleep
        self._buffer: list[Verdict] = []
        self._first_at = 0.0
        self._last_prune = clock()
        self._closed = False
        self.store.prune(config)

    @property
    def location(self) -> str:
        return f"embedded store {self.store.path}"

    @property
    def path(self) -> Path:
        return self.store.path

    def write_batch(self, verdicts: Sequence[Verdict]) -> None:
        if self._closed:
            raise VerdictStoreError(str(self.store.path), "write after close")
        if verdicts:
            if not self._buffer:
                self._first_at = self._clock()
            self._buffer.extend(verdicts)
            self.stats.received += len(verdicts)
        if self._buffer and (
            len(self._buffer) >= self.config.batch_verdicts
            or self._clock() - self._first_at >= self.config.flush_interval
        ):
            self._commit()

    def flush(self) -> None:
        if self._buffer:
            self._commit()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self.store.close()
            self.dead_letter.close()

    def _commit(self) -> None:
        verdicts, self._buffer = self._buffer, []
        docs = [encode(v, self._context) for v in verdicts]
        for attempt in range(4):
            try:
                self.store.insert(verdicts, docs)
                self.stats.requests += 1
                self.stats.delivered += len(verdicts)
                break
            except VerdictStoreError as exc:
                self.stats.last_error = str(exc)
                if attempt == 3:
                    self.dead_letter.write(
                        [
                            DeadLetter(d.doc_id, "store", d.body, exc.message, None, attempt + 1)
                            for d in docs
                        ]
                    )
                    self.stats.dead_lettered += len(docs)
                    log.error(
                        "%s; %d verdicts written to %s", exc, len(docs), self.dead_letter.path
                    )
                    return
                self.stats.retries += len(docs)
                self._sleep(0.05 * 2**attempt)
        if self._clock() - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = self._clock()
            self.store.prune(self.config)

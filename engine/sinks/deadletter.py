"""Dead-letter files: verdicts a sink could not deliver, one JSON object a line.

Each line keeps the document, its id (so a replay never indexes it twice), the
target, the attempts made and the last error. `read_dead_letters` is the input
boundary of `shrike es-replay`: a bad line is a DeadLetterError naming file:line.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from engine.sinks.errors import DeadLetterError


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One undelivered document. `body` is the document's JSON text."""

    doc_id: str
    target: str
    body: str
    error: str
    status: int | None = None
    attempts: int = 1
    line: int = 0

    @property
    def document(self) -> dict[str, Any]:
        doc = json.loads(self.body)
        assert isinstance(doc, dict)
        return doc


class DeadLetterFile:
    """Appends dead letters to one file, created on the first failure; thread-safe, fsynced."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None

    @classmethod
    def in_directory(cls, directory: str | os.PathLike[str], stem: str) -> DeadLetterFile:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return cls(Path(directory) / f"{stem}-{stamp}-{os.getpid()}.ndjson")

    def write(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines = "".join(
            json.dumps(
                {
                    "failed_at": now,
                    "target": d.target,
                    "id": d.doc_id,
                    "status": d.status,
                    "attempts": d.attempts,
                    "error": d.error,
                    "document": json.loads(d.body),
                },
                separators=(",", ":"),
            )
            + "\n"
            for d in letters
        )
        with self._lock:
            try:
                if self._fh is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = self.path.open("a", encoding="utf-8")
                self._fh.write(lines)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise DeadLetterError(
                    str(self.path), f"cannot write {len(letters)} undelivered verdicts: {exc}"
                ) from exc
            self.count += len(letters)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_dead_letters(path: str | os.PathLike[str]) -> Iterator[DeadLetter]:
    """The dead letters in a file, in order; blank lines are skipped."""
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except OSError as exc:
        raise DeadLetterError(str(p), f"cannot read: {exc.strerror}") from exc
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{p}:{number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DeadLetterError(
                    where, f"not JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(entry, dict):
                raise DeadLetterError(where, "a dead letter must be a JSON object")
            doc, doc_id = entry.get("document"), entry.get("id")
            if not isinstance(doc, dict):
                raise DeadLetterError(where, "has no 'document' object")
            if not isinstance(doc_id, str) or not doc_id:
                raise DeadLetterError(where, "has no 'id'")
            status = entry.get("status")
            yield DeadLetter(
                doc_id=doc_id,
                target=str(entry.get("target") or ""),
                body=json.dumps(doc, separators=(",", ":")),
                error=str(entry.get("error") or ""),
                status=status if isinstance(status, int) else None,
                attempts=int(entry.get("attempts") or 1),
                line=number,
            )

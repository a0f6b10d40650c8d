"""What every sink is: `write_batch(verdicts)`, `flush()`, `close()`, a context manager,
and counters of what it did; plus the encoded form a verdict travels in."""

from __future__ import annotations

import base64
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from engine.ecs import DEFAULT_CONTEXT, EcsContext, to_ecs
from engine.events import Verdict


@dataclass(slots=True)
class SinkStats:
    """Counters a sink keeps; `received == delivered + dead_lettered + waiting` at all times."""

    received: int = 0
    delivered: int = 0
    duplicates: int = 0  # sent again after a lost answer, found already stored
    dead_lettered: int = 0
    retries: int = 0
    requests: int = 0
    blocked: int = 0  # times write_batch waited for room in the queue
    blocked_seconds: float = 0.0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class EncodedVerdict:
    """A verdict's ECS document as JSON text, with an id derived from that text.

    The id is the same however often the document is sent, so a retry after a
    lost answer or a replay of a dead letter is recognized, never stored twice.
    """

    doc_id: str
    body: str
    target: str = ""

    @property
    def size(self) -> int:
        return len(self.body) + len(self.doc_id) + 64


def encode(verdict: Verdict, context: EcsContext = DEFAULT_CONTEXT) -> EncodedVerdict:
    body = json.dumps(to_ecs(verdict, context), separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.blake2b(body.encode("utf-8"), digest_size=15).digest()
    return EncodedVerdict(base64.urlsafe_b64encode(digest).decode("ascii"), body)


class Sink(ABC):
    """Takes verdicts in batches. A failure to deliver is retried, then dead-lettered."""

    name: str = "sink"

    def __init__(self) -> None:
        self.stats = SinkStats()

    @abstractmethod
    def write_batch(self, verdicts: Sequence[Verdict]) -> None:
        """Accept verdicts; may block while the sink is full (back-pressure)."""

    @abstractmethod
    def flush(self) -> None:
        """Return once every accepted verdict is delivered or dead-lettered."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release connections and files. Closing twice is harmless."""

    @property
    def location(self) -> str:
        """Where the verdicts went, for a closing summary line."""
        return self.name

    @property
    def dead_letter_files(self) -> tuple[Path, ...]:
        """Dead-letter files this sink wrote to (none when everything was delivered)."""
        letters = getattr(self, "dead_letter", None)
        return (letters.path,) if letters is not None and letters.count else ()

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

"""The Elasticsearch sink: verdicts as ECS documents into a data stream through the
official client's bulk helper, from a bounded queue drained by one sender thread.

Batches close at `batch_docs` documents, `batch_bytes` bytes or `flush_interval`
seconds, whichever comes first. A full queue makes `write_batch` wait, which
slows the pipeline instead of growing memory. Whole-request failures (connection
errors, 429, 5xx) and per-document 429/5xx are retried with exponential backoff
and full jitter; other per-document errors (mapping conflicts, bad values) are
not retried. What is still undelivered after `max_retries` goes to the
dead-letter file; after a retry cycle in which the cluster never answered,
later batches get a single attempt until it answers again, so a dead cluster
costs each batch one try rather than a full backoff cycle. Documents are created with an id derived from their content,
so a retry after a lost answer finds the first copy (409) instead of adding a
second.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers
from elasticsearch.exceptions import SerializationError, SSLError

from engine.ecs import DEFAULT_CONTEXT, EcsContext
from engine.events import Verdict
from engine.sinks.base import EncodedVerdict, Sink, encode
from engine.sinks.config import ElasticsearchConfig
from engine.sinks.deadletter import DeadLetter, DeadLetterFile
from engine.sinks.errors import ElasticsearchSinkError, SinkError

log = logging.getLogger(__name__)

#: The composable index template `shrike es-setup` installs for the data streams.
INDEX_TEMPLATE_NAME = "shrike-alerts"
#: Data streams are named `logs-shrike.alert-<namespace>`.
DATA_STREAM_PREFIX = "logs-shrike.alert-"

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def build_client(config: ElasticsearchConfig) -> Elasticsearch:
    """A client for the configured cluster. The client's own retries are off: the sink retries."""
    if not config.enabled:
        raise ElasticsearchSinkError("elasticsearch", "no url or cloud_id configured")
    kwargs: dict[str, Any] = {
        "request_timeout": config.request_timeout,
        "max_retries": 0,
        "retry_on_timeout": False,
    }
    tls = True
    basic: tuple[str, str] | None = None
    if config.cloud_id:
        kwargs["cloud_id"] = config.cloud_id
    else:
        assert config.url is not None
        parts = urlsplit(config.url)
        if parts.username is not None:
            # credentials in the URL become basic auth so they never reach a log line
            basic = (unquote(parts.username), unquote(parts.password or ""))
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        kwargs["hosts"] = [urlunsplit((parts.scheme, netloc, parts.path, "", ""))]
        tls = parts.scheme == "https"
    if config.api_key:
        kwargs["api_key"] = config.api_key
    elif config.username is not None and config.password is not None:
        kwargs["basic_auth"] = (config.username, config.password)
    elif basic is not None:
        kwargs["basic_auth"] = basic
    if tls:
        kwargs["verify_certs"] = config.verify_certs
        if config.ca_file:
            if not Path(config.ca_file).is_file():
                raise ElasticsearchSinkError(config.ca_file, "CA file not found")
            kwargs["ca_certs"] = config.ca_file
    try:
        return Elasticsearch(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ElasticsearchSinkError(config.where, f"cannot configure the client: {exc}") from exc


class Backoff:
    """Exponential backoff with full jitter: attempt n waits up to min(cap, base * 2**(n-1))."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial, self.cap = initial, cap
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.initial * 2 ** max(attempt - 1, 0)))

    def delay(self, attempt: int) -> float:
        return self._rng.uniform(0, self.ceiling(attempt))


class ElasticsearchSink(Sink):
    """Verdicts into `logs-shrike.alert-<namespace>` (see module docstring for the delivery rules)."""

    name = "elasticsearch"

    def __init__(
        self,
        config: ElasticsearchConfig,
        *,
        dead_letter: DeadLetterFile,
        context: EcsContext = DEFAULT_CONTEXT,
        client: Elasticsearch | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.config = config
        self.dead_letter = dead_letter
        self._context = context
        self._client = client if client is not None else build_client(config)
        self._owns_client = client is None
        self._sleep = sleep
        self._clock = clock
        self._backoff = Backoff(config.initial_backoff, config.max_backoff, rng)
        self._cond = threading.Condition()
        self._pending: deque[EncodedVerdict] = deque()
        self._pending_bytes = 0
        self._first_at = 0.0
        self._inflight = 0
        self._flush_wanted = False
        self._closing = False
        self._closed = False
        self._failure: BaseException | None = None
        self._unreachable = False
        self._thread = threading.Thread(target=self._run, name="shrike-es-sink", daemon=True)
        self._thread.start()

    @property
    def location(self) -> str:
        return f"{self.config.where} data stream {self.config.data_stream}"

    def preflight(self) -> None:
        """Fail early, with a clear message, when the cluster is unreachable or not set up."""
        try:
            found = bool(self._client.indices.exists_index_template(name=INDEX_TEMPLATE_NAME))
        except (ApiError, TransportError) as exc:
            raise ElasticsearchSinkError(
                self.config.where, f"cannot reach: {_describe(exc)}"
            ) from exc
        if not found:
            raise ElasticsearchSinkError(
                self.config.where,
                f"index template {INDEX_TEMPLATE_NAME} is missing; run `shrike es-setup` first",
            )

    # producer side ------------------------------------------------------------

    def write_batch(self, verdicts: Sequence[Verdict]) -> None:
        self.write_documents([encode(v, self._context) for v in verdicts])

    def write_documents(self, docs: Sequence[EncodedVerdict]) -> None:
        """Queue encoded documents; waits while the queue is full."""
        if not docs:
            return
        with self._cond:
            self.stats.received += len(docs)
            if self._failure is None and self._closing:
                self._fail_docs(docs, "the sink is closed")
                raise ElasticsearchSinkError(self.config.where, "write after close")
            waited_from = 0.0
            while (
                self._failure is None
                and self._pending
                and len(self._pending) + len(docs) > self.config.queue_docs
            ):
                if not waited_from:
                    waited_from = time.perf_counter()
                    self.stats.blocked += 1
                self._cond.wait()
            if waited_from:
                self.stats.blocked_seconds += time.perf_counter() - waited_from
            if self._failure is not None:
                self._fail_docs(docs, f"sender stopped: {self._failure}")
                self._raise_failure()
            if not self._pending:
                self._first_at = self._clock()
            self._pending.extend(docs)
            self._pending_bytes += sum(d.size for d in docs)
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            self._flush_wanted = True
            self._cond.notify_all()
            while (self._pending or self._inflight) and self._failure is None:
                self._cond.wait()
            self._raise_failure()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join()
            self._closed = True
            if self._owns_client:
                self._client.close()
            self.dead_letter.close()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise ElasticsearchSinkError(
                self.config.where, f"the sender stopped: {self._failure}"
            ) from self._failure

    def _fail_docs(self, docs: Iterable[EncodedVerdict], reason: str) -> None:
        letters = [self._letter(d, reason, None, 0) for d in docs]
        self.dead_letter.write(letters)
        self.stats.dead_lettered += len(letters)

    # sender side --------------------------------------------------------------

    def _run(self) -> None:
        batch: list[EncodedVerdict] = []
        try:
            while True:
                batch = self._next_batch()
                if not batch:
                    return
                self._deliver(batch)
                with self._cond:
                    self._inflight = 0
                    batch = []
                    self._cond.notify_all()
        except BaseException as exc:  # the thread must never take verdicts down with it
            with self._cond:
                rest = batch + list(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                self._inflight = 0
                self._failure = exc
                self._cond.notify_all()
            try:
                self._fail_docs(rest, f"sender stopped: {exc!r}")
            finally:
                log.error("elasticsearch sink stopped: %s", exc)

    def _next_batch(self) -> list[EncodedVerdict]:
        cfg = self.config
        with self._cond:
            while True:
                if self._pending:
                    due = self._first_at + cfg.flush_interval
                    if (
                        len(self._pending) >= cfg.batch_docs
                        or self._pending_bytes >= cfg.batch_bytes
                        or self._flush_wanted
                        or self._closing
                        or self._clock() >= due
                    ):
                        break
                    self._cond.wait(timeout=max(due - self._clock(), 0.001))
                else:
                    if self._closing:
                        return []
                    self._flush_wanted = False
                    self._cond.wait()
            batch: list[EncodedVerdict] = []
            size = 0
            while self._pending and len(batch) < cfg.batch_docs:
                doc = self._pending[0]
                if batch and size + doc.size > cfg.batch_bytes:
                    break
                batch.append(self._pending.popleft())
                size += doc.size
            self._pending_bytes -= size
            self._inflight = len(batch)
            if self._pending:
                self._first_at = self._clock()
            else:
                self._flush_wanted = False
            self._cond.notify_all()
            return batch

    def _deliver(self, batch: list[EncodedVerdict]) -> None:
        todo = batch
        attempt = 0
        while True:
            retry, dead, answered = self._attempt(todo, attempt)
            if answered:
                self._unreachable = False
            if dead:
                self.dead_letter.write(dead)
                with self._cond:
                    self.stats.dead_lettered += len(dead)
            if not retry:
                return
            attempt += 1
            # once a whole retry cycle found no cluster, later batches get one attempt each
            # until it answers again, so a dead cluster cannot hold the pipeline for long
            if attempt > (0 if self._unreachable else self.config.max_retries):
                if not answered:
                    self._unreachable = True
                letters = [self._letter(d, err, status, attempt) for d, err, status in retry]
                self.dead_letter.write(letters)
                with self._cond:
                    self.stats.dead_lettered += len(letters)
                log.warning(
                    "%s: %d verdicts undelivered after %d attempts, written to %s",
                    self.config.where,
                    len(letters),
                    attempt,
                    self.dead_letter.path,
                )
                return
            with self._cond:
                self.stats.retries += len(retry)
            delay = self._backoff.delay(attempt)
            log.info(
                "%s: retrying %d verdicts in %.2fs (%s)",
                self.config.where,
                len(retry),
                delay,
                retry[0][1],
            )
            self._sleep(delay)
            todo = [d for d, _, _ in retry]

    def _attempt(
        self, docs: list[EncodedVerdict], attempt: int
    ) -> tuple[list[tuple[EncodedVerdict, str, int | None]], list[DeadLetter], bool]:
        """One bulk request: documents to retry with their error, dead letters, and whether
        the cluster answered at all."""
        retry: list[tuple[EncodedVerdict, str, int | None]] = []
        dead: list[DeadLetter] = []
        results: list[tuple[bool, dict[str, Any]]] = []
        default_target = self.config.data_stream
        actions: list[dict[str, Any]] = [
            {
                "header": {"create": {"_index": d.target or default_target, "_id": d.doc_id}},
                "body": d.body.encode("utf-8"),
            }
            for d in docs
        ]
        with self._cond:
            self.stats.requests += 1
        try:
            for result in helpers.streaming_bulk(
                self._client,
                actions,
                chunk_size=len(actions),
                max_chunk_bytes=2**31,
                raise_on_error=False,
                raise_on_exception=False,
                max_retries=0,
                yield_ok=True,
                expand_action_callback=_expand,
            ):
                results.append(result)
            reason = "the bulk answer has no result for these documents"
        except SSLError as exc:  # a certificate problem does not pass by retrying
            reason = _describe(exc)
            self._note_error(reason)
            dead += [self._letter(d, reason, None, attempt + 1) for d in docs[len(results) :]]
        except (TransportError, SerializationError) as exc:  # no answer, or an unreadable one
            reason = _describe(exc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # an answer that is JSON but not a bulk answer (a proxy, an incompatible server)
            reason = f"malformed bulk answer ({type(exc).__name__}: {exc})"
        unanswered = docs[len(results) + len(dead) :]
        if unanswered:
            self._note_error(reason)
            retry += [(d, reason, None) for d in unanswered]
        delivered = duplicates = 0
        for doc, (ok, item) in zip(docs, results, strict=False):
            info: Any = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            status = _status(info)
            if ok:
                delivered += 1
            elif status == 409:
                duplicates += 1
            elif status in _RETRY_STATUS:
                retry.append((doc, _item_error(info), status))
            else:
                reason = _item_error(info)
                self._note_error(reason)
                dead.append(self._letter(doc, reason, status, attempt + 1))
        with self._cond:
            self.stats.delivered += delivered + duplicates
            self.stats.duplicates += duplicates
        return retry, dead, bool(results)

    def _note_error(self, reason: str) -> None:
        with self._cond:
            self.stats.last_error = reason

    def _letter(
        self, doc: EncodedVerdict, error: str, status: int | None, attempts: int
    ) -> DeadLetter:
        return DeadLetter(
            doc_id=doc.doc_id,
            target=doc.target or self.config.data_stream,
            body=doc.body,
            error=error,
            status=status,
            attempts=attempts,
        )


def _expand(action: Any) -> tuple[dict[str, Any], bytes]:
    """Actions arrive as header and pre-serialized body, so documents are encoded once."""
    return action["header"], action["body"]


def _status(info: Any) -> int:
    """An item's HTTP status; 500 (retried) when the answer does not say."""
    status = info.get("status") if isinstance(info, dict) else None
    return status if isinstance(status, int) and not isinstance(status, bool) else 500


def _item_error(info: Any) -> str:
    if not isinstance(info, dict):
        return f"malformed bulk item {info!r}"
    err = info.get("error")
    if isinstance(err, dict):
        text = f"{err.get('type', 'error')}: {err.get('reason', '')}"
        cause = err.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text
    return str(err) if err else f"status {info.get('status')}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status_code} {exc.message}"
    text = f"{type(exc).__name__}: {exc}"
    # the transport's own message is generic ("TLS error"); the cause says what went wrong
    cause = exc.errors[0] if isinstance(exc, TransportError) and exc.errors else exc.__cause__
    while cause is not None and getattr(cause, "__cause__", None) is not None:
        cause = cause.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({cause})"
    return text


def replay_dead_letters(
    letters: Iterable[DeadLetter],
    config: ElasticsearchConfig,
    *,
    dead_letter: DeadLetterFile,
    client: Elasticsearch | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ElasticsearchSink:
    """Send dead letters again, each to its recorded target under its recorded id.

    Returns the closed sink, whose stats say what was delivered and what went
    to the new dead-letter file. Letters without a Shrike data stream as
    target (those of the embedded store) go to `config.data_stream`.
    """
    sink = ElasticsearchSink(config, dead_letter=dead_letter, client=client, sleep=sleep)
    try:
        chunk: list[EncodedVerdict] = []
        for letter in letters:
            # letters from the embedded store (target "store") go to the configured stream
            target = letter.target if letter.target.startswith(DATA_STREAM_PREFIX) else ""
            chunk.append(EncodedVerdict(letter.doc_id, letter.body, target))
            if len(chunk) >= config.batch_docs:
                sink.write_documents(chunk)
                chunk = []
        sink.write_documents(chunk)
    except SinkError:
        sink.close()
        raise
    sink.close()
    return sink

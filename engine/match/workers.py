"""Matching on several cores: the flows of one capture sharded across processes.

With N workers, the parent and N - 1 forked processes (forked once the rules are
compiled, so the compiled ruleset is shared copy-on-write) each match the flows
whose symmetric 5-tuple hash falls to them. Every forked worker reads the same
capture and decodes it, keeps the rows of its flows, and tracks, reassembles and
matches just those with its own copy of the matcher. The parent tracks every
flow, for the flow records and everything downstream of the matcher, matches its
own share, and takes each batch's alerts from every worker, merged back into
capture order.

State that spans flows stays exact: a worker defers the thresholds, detection
filters and windows of its alerts (`Alert.rate`), and the parent's matcher
counts them over all shards in capture order (`Matcher.admit`). Bits kept per
host (xbits) cannot be shared this way; a ruleset that uses them runs in one
process (`host_state_rules`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import operator
import os
import signal
import threading
import traceback
from collections.abc import Callable, Generator, Iterator
from functools import partial
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np

from dpdk_io.batch import Source
from dpdk_io.errors import CaptureError
from engine.decode import DecodedBatch
from engine.events import FlowKey, Match
from engine.flows import FlowRecords, FlowTableConfig
from engine.match.compiler import CompiledRuleset
from engine.match.matcher import Alert, Matcher, MatcherStats
from engine.match.stream import BatchResult, ChecksumMask, iter_matches
from engine.pipeline import PacketPathStats

_PORTED = np.array([p in (6, 17, 132) for p in range(256)])  # TCP, UDP, SCTP
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)


def _by_fields(obj: Any) -> tuple[type, tuple[Any, ...]]:
    """Pickle a frozen dataclass as its class and field values: the generated
    `__setstate__` of a slotted dataclass looks its fields up on every call, which
    made unpickling alerts 2.5 times slower."""
    cls = type(obj)
    return cls, _FIELDS[cls](obj)


_FIELDS = {
    cls: operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
    for cls in (Alert, Match, FlowKey)
}
for _cls in _FIELDS:
    ForkingPickler.register(_cls, _by_fields)


class WorkerError(RuntimeError):
    """A match worker failed or exited early; the message carries its traceback."""


def host_state_rules(ruleset: CompiledRuleset) -> list[int]:
    """Ids of the rules that set or test bits kept per host, which span flows (and so
    shards): with any, the capture is matched in one process."""
    return [r.rule.id for r in ruleset.rules if r.host_bits]


def flow_shards(rows: np.ndarray, workers: int) -> np.ndarray:
    """Per decoded row, the worker its flow goes to: a hash of its addresses, its ports
    (TCP, UDP and SCTP) and its protocol, the same in both directions."""
    src = rows["src"]
    dst = rows["dst"]
    ends = (src[:, 0] * _K1 ^ src[:, 1]) + (dst[:, 0] * _K1 ^ dst[:, 1])
    proto = rows["proto"]
    ports = rows["sport"].astype(np.uint64) + rows["dport"].astype(np.uint64)
    ports[~_PORTED[proto]] = 0
    h = ends ^ (ports * _K2) ^ proto.astype(np.uint64)
    h ^= h >> np.uint64(31)
    h *= _K3
    h ^= h >> np.uint64(29)
    return (h % np.uint64(workers)).astype(np.int64)


def shard_mask(decoded: DecodedBatch, worker: int, workers: int) -> np.ndarray:
    """Which rows of `decoded` belong to flows that go to `worker`."""
    return flow_shards(decoded.rows, workers) == worker


def iter_matches_sharded(
    source: Source,
    open_source: Callable[[], Source],
    matcher: Matcher,
    workers: int,
    config: FlowTableConfig | None = None,
    *,
    stats: PacketPathStats | None = None,
    on_batch: Callable[[int], None] | None = None,
    checksums: ChecksumMask | None = None,
    before_batch: Callable[[], None] | None = None,
) -> Generator[BatchResult, None, None]:
    """`iter_matches` over `source`, with the flows matched by `workers` processes:
    this one and `workers - 1` forked ones, each reading the same input from its own
    `open_source()`; then, if any, one result with the alerts on what the inspectors
    still held at the end (`Matcher.finish`, which this calls for `matcher`).

    `matcher` is the parent's: it matches shard 0, each forked worker starts from a
    copy of it, and it admits every shard's alerts through thresholds and windows
    and adds up the workers' counters and rule profiles. SIGHUP is passed on to the
    workers, which reload on their own.
    A `CaptureError` is raised after everything read before it was yielded.
    """
    context = multiprocessing.get_context("fork")
    channels: list[tuple[Connection, BaseProcess]] = []
    try:
        for k in range(1, workers):
            receiver, sender = context.Pipe(duplex=False)
            proc = context.Process(
                target=_work,
                args=(open_source, matcher, config, checksums, before_batch, k, workers, sender),
                name=f"shrike-match-{k}",
                daemon=True,
            )
            proc.start()
            sender.close()
            channels.append((receiver, proc))
        matcher.shard = 0
        with _relay_hangup([p.pid for _, p in channels if p.pid is not None]):
            yield from _merge(
                iter_matches(
                    source,
                    matcher,
                    config,
                    stats=stats,
                    on_batch=on_batch,
                    checksums=checksums,
                    before_batch=before_batch,
                    shard=partial(shard_mask, worker=0, workers=workers),
                    track_all=True,
                ),
                matcher,
                channels,
            )
    finally:
        matcher.shard = None
        for receiver, worker in channels:
            receiver.close()
            if worker.is_alive():
                worker.terminate()
            worker.join()


def _merge(
    own: Iterator[BatchResult], matcher: Matcher, channels: list[tuple[Connection, BaseProcess]]
) -> Iterator[BatchResult]:
    failure: CaptureError | None = None
    seq = 0
    held = 0  # alerts the thresholds and windows held back
    try:
        for result in own:
            if result.decoded is not None:
                shards = [result.alerts]
                shards += [_receive(k, channel, seq) for k, channel in enumerate(channels, 1)]
                seq += 1
                result.alerts = _admitted(matcher, shards)
                held += sum(map(len, shards)) - len(result.alerts)
            yield result
    except CaptureError as exc:
        failure = exc
    late: list[list[Alert]] = [matcher.finish()]
    for k, channel in enumerate(channels, 1):
        alerts, counters, profiles = _receive(k, channel, "end")
        late.append(alerts)
        for f in dataclasses.fields(counters):
            setattr(
                matcher.stats, f.name, getattr(matcher.stats, f.name) + getattr(counters, f.name)
            )
        for rule_id, prof in profiles.items():
            mine = matcher.profiles.setdefault(rule_id, type(prof)())
            mine.checks += prof.checks
            mine.matches += prof.matches
            mine.ns += prof.ns
    rest = _admitted(matcher, late)
    matcher.stats.alerts -= held + sum(map(len, late)) - len(rest)
    if rest:
        yield BatchResult(rest, FlowRecords.empty())
    if failure is not None:
        raise failure


def _admitted(matcher: Matcher, shards: list[list[Alert]]) -> list[Alert]:
    """The shards' alerts in capture order (those on no packet first), less those a
    threshold or window of the parent's matcher holds back."""
    merged = sorted(
        (a for alerts in shards for a in alerts),
        key=lambda a: -1 if a.match.packet is None else a.match.packet,
    )
    return [a for a in merged if matcher.admit(a)]


def _receive(k: int, channel: tuple[Connection, BaseProcess], expect: int | str) -> Any:
    """Worker `k`'s next message, which must be `expect` (a batch number or "end")."""
    receiver, proc = channel
    while not receiver.poll():
        wait([receiver, proc.sentinel])
        if not receiver.poll() and not proc.is_alive():
            raise WorkerError(f"match worker {k} exited with code {proc.exitcode}")
    try:
        tag, *payload = receiver.recv()
    except EOFError:
        raise WorkerError(f"match worker {k} closed its channel") from None
    if tag == "error":
        raise WorkerError(f"match worker {k} failed:\n{payload[0]}")
    if tag != expect:
        raise WorkerError(f"match worker {k} sent {tag!r} where {expect!r} was due")
    return payload[0] if len(payload) == 1 else payload


def _work(
    open_source: Callable[[], Source],
    matcher: Matcher,
    config: FlowTableConfig | None,
    checksums: ChecksumMask | None,
    before_batch: Callable[[], None] | None,
    worker: int,
    workers: int,
    sender: Connection,
) -> None:
    """One worker: match the flows of shard `worker` and send each batch's alerts."""
    matcher.shard = worker
    # counted afresh: the parent adds what each worker sends to what it already holds
    matcher.stats = MatcherStats()
    matcher.profiles = {}
    try:
        seq = 0
        with open_source() as source:
            try:
                for result in iter_matches(
                    source,
                    matcher,
                    config,
                    checksums=checksums,
                    before_batch=before_batch,
                    shard=partial(shard_mask, worker=worker, workers=workers),
                ):
                    if result.decoded is not None:
                        sender.send((seq, result.alerts))
                        seq += 1
            except CaptureError:
                pass  # the parent reads the same capture and reports it
        sender.send(("end", matcher.finish(), matcher.stats, matcher.profiles))
    except Exception:
        sender.send(("error", traceback.format_exc()))
    finally:
        sender.close()


@contextlib.contextmanager
def _relay_hangup(pids: list[int]) -> Iterator[None]:
    """While open, SIGHUP to this process also goes to `pids` (hot reload in workers)."""
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def relay(signum: int, frame: Any) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        if callable(previous):
            previous(signum, frame)

    previous = signal.signal(signal.SIGHUP, relay)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)

"""Matching on several cores: the flows of one capture sharded across processes.

With N workers, the parent and N - 1 forked processes (forked once the rules are
compiled, so the compiled ruleset is shared copy-on-write) each take the flows
whose symmetric 5-tuple hash falls to them. Every process reads the same capture,
decodes it and reassembles its fragments, keeps the rows of its flows, and
tracks, reassembles and matches just those with its own flow table and its own
copy of the matcher. The parent takes each batch's alerts and ended flows from
every worker: the alerts merged back into capture order, the flow records after
its own. A flow's record is the one a single process makes, though it may come a
batch earlier or later (each table sweeps its idle flows on its own, oldest first),
and each table holds up to `max_flows`. The results carry every decoded row, for
what runs downstream of the matcher.

State that spans flows stays exact: a worker defers the thresholds, detection
filters and windows of its alerts (`Alert.rate`), and the parent's matcher
counts them over all shards in capture order (`Matcher.admit`). Bits kept per
host (xbits) cannot be shared this way; a ruleset that uses them runs in one
process (`host_state_rules`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import multiprocessing
import operator
import os
import pickle
import queue
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
from engine.match.kernels import shard_kernel
from engine.match.matcher import Alert, Matcher, MatcherStats
from engine.match.stream import BatchResult, ChecksumMask, iter_matches
from engine.pipeline import PacketPathStats


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


_AHEAD = 4  # batches a worker may match ahead of the parent


class WorkerError(RuntimeError):
    """A match worker failed or exited early; the message carries its traceback."""


def host_state_rules(ruleset: CompiledRuleset) -> list[int]:
    """Ids of the rules that set or test bits kept per host, which span flows (and so
    shards): with any, the capture is matched in one process."""
    return [r.rule.id for r in ruleset.rules if r.host_bits]


def flow_shards(rows: np.ndarray, workers: int) -> np.ndarray:
    """Per decoded row, the worker its flow goes to: a hash of its addresses, its ports
    (TCP, UDP and SCTP) and its protocol, the same in both directions."""
    out = np.empty(rows.shape[0], dtype=np.int64)
    shard_kernel(rows, workers, out)
    return out


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
    """`iter_matches` over `source`, with the flows tracked and matched by `workers`
    processes: this one and `workers - 1` forked ones, each reading the same input
    from its own `open_source()`; then, if any, one result with the flows still open
    and the alerts on what the inspectors still held at the end (`Matcher.finish`,
    which this calls for `matcher`).

    `matcher` is the parent's: it matches shard 0, each forked worker starts from a
    copy of it, and it admits every shard's alerts through thresholds and windows
    and adds up the workers' counters and rule profiles. `stats` counts every
    shard's flows. SIGHUP is passed on to the workers, which reload on their own.
    A `CaptureError` is raised after everything read before it was yielded.
    """
    context = multiprocessing.get_context("fork")
    st = stats if stats is not None else PacketPathStats()
    channels: list[tuple[Connection, BaseProcess]] = []
    try:
        for k in range(1, workers):
            receiver, sender = context.Pipe(duplex=False)
            _widen(receiver)
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
                    stats=st,
                    on_batch=on_batch,
                    checksums=checksums,
                    before_batch=before_batch,
                    shard=partial(shard_mask, worker=0, workers=workers),
                    all_rows=True,
                ),
                matcher,
                channels,
                st,
            )
    finally:
        matcher.shard = None
        for receiver, worker in channels:
            receiver.close()
            if worker.is_alive():
                worker.terminate()
            worker.join()


def _merge(
    own: Iterator[BatchResult],
    matcher: Matcher,
    channels: list[tuple[Connection, BaseProcess]],
    stats: PacketPathStats,
) -> Iterator[BatchResult]:
    failure: CaptureError | None = None
    seq = 0
    held = 0  # alerts the thresholds and windows held back
    still_open: list[FlowRecords] = []  # flows open at the end of input, every shard's
    try:
        for result in own:
            if result.decoded is None:
                still_open.append(result.ended)
                continue
            shards = [result.alerts]
            ended = [result.ended]
            for k, channel in enumerate(channels, 1):
                alerts, records = _receive(k, channel, seq)
                shards.append(alerts)
                ended.append(records)
            seq += 1
            result.alerts = _admitted(matcher, shards)
            result.ended = FlowRecords.concat(ended)
            held += sum(map(len, shards)) - len(result.alerts)
            yield result
    except CaptureError as exc:
        failure = exc
    late: list[list[Alert]] = [matcher.finish()]
    for k, channel in enumerate(channels, 1):
        alerts, records, counters, profiles, path = _receive(k, channel, "end")
        late.append(alerts)
        still_open.append(records)
        stats.flows += path.flows
        stats.evicted += path.evicted
        stats.later_fragments += path.later_fragments
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
    records = FlowRecords.concat(still_open)
    if rest or len(records):
        yield BatchResult(rest, records)
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
        tag, *payload = _recv(receiver)
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
    """One worker: track and match the flows of shard `worker`, and send each batch's
    alerts and ended flows; at the end, its flows still open and its counters."""
    matcher.shard = worker
    # counted afresh: the parent adds what each worker sends to what it already holds
    matcher.stats = MatcherStats()
    matcher.profiles = {}
    path = PacketPathStats()
    still_open = FlowRecords.empty()
    # a thread sends, so that this one may match up to `_AHEAD` batches ahead of the
    # parent: a batch's flow records fill the pipe, and which process has more to do
    # varies from batch to batch
    outbox: queue.Queue[Any] = queue.Queue(maxsize=_AHEAD)
    poster = threading.Thread(target=_post, args=(sender, outbox), daemon=True)
    poster.start()
    try:
        seq = 0
        with open_source() as source:
            try:
                for result in iter_matches(
                    source,
                    matcher,
                    config,
                    stats=path,
                    checksums=checksums,
                    before_batch=before_batch,
                    shard=partial(shard_mask, worker=worker, workers=workers),
                ):
                    if result.decoded is None:
                        still_open = result.ended
                    else:
                        outbox.put((seq, result.alerts, result.ended))
                        seq += 1
            except CaptureError:
                pass  # the parent reads the same capture and reports it
        outbox.put(("end", matcher.finish(), still_open, matcher.stats, matcher.profiles, path))
    except Exception:
        outbox.put(("error", traceback.format_exc()))
    finally:
        outbox.put(None)
        poster.join()
        sender.close()


def _post(sender: Connection, outbox: queue.Queue[Any]) -> None:
    """Send what comes through `outbox` until None. A message that cannot be sent is
    reported to the parent as the worker's failure (unless the parent has gone), and
    the rest is taken without sending, so that the worker never blocks on it."""
    broken = False
    while (message := outbox.get()) is not None:
        if broken:
            continue
        try:
            _send(sender, message)
        except OSError:
            broken = True  # the parent closed its end
        except Exception:
            broken = True
            with contextlib.suppress(OSError):
                _send(sender, ("error", traceback.format_exc()))


def _send(conn: Connection, message: Any) -> None:
    """Send `message` with the data of its arrays out of band, as one block after it:
    pickled in line, each of a batch's flow-record columns is copied into the pickle,
    ten times slower; and few writes let the sending thread wait less for the GIL."""
    buffers: list[pickle.PickleBuffer] = []
    head = io.BytesIO()
    ForkingPickler(head, 5, True, buffers.append).dump(message)
    raws = [b.raw() for b in buffers]
    conn.send((head.getvalue(), [r.nbytes for r in raws]))
    block = memoryview(b"".join(raws))
    while block:
        block = block[os.write(conn.fileno(), block) :]


def _recv(conn: Connection) -> Any:
    """A message `_send` sent; its arrays are writable."""
    head, sizes = conn.recv()
    block = memoryview(bytearray(sum(sizes)))
    got = 0
    while got < len(block):
        n = os.readv(conn.fileno(), [block[got:]])
        if not n:
            raise EOFError
        got += n
    buffers = []
    at = 0
    for size in sizes:
        buffers.append(block[at : at + size])
        at += size
    return pickle.loads(head, buffers=buffers)


def _widen(conn: Connection) -> None:
    """Let the pipe behind `conn` hold a megabyte (Linux), so a batch's flow records
    cross in fewer reads and writes; else leave it as it is."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


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

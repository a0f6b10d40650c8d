"""Flows sharded across worker processes: the same alerts, in the same order, as one process."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

from dpdk_io.batch import Source
from dpdk_io.pcap import PcapSource
from engine.decode import decode
from engine.flows import FlowRecords
from engine.inspect import Inspector
from engine.match import Alert, Matcher, compile_ruleset, load_rules
from engine.match.loading import default_variables
from engine.match.stream import BatchResult, checksum_validator, iter_matches
from engine.match.workers import (
    WorkerError,
    _post,
    _recv,
    _send,
    flow_shards,
    host_state_rules,
    iter_matches_sharded,
    shard_mask,
)
from engine.pipeline import PacketPathStats
from engine.sources import open_source
from tests.engine.match.traffic import MACS, matcher_for

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
COMMUNITY = SHARED / "rulesets" / "snort3-community" / "snort3-community.rules"
RULES = """
rule "admin page" { id 11 match tcp to any port 80 established to_server
  where pkt_data contains "/admin" }
rule "many DNS queries from one source" { id 12 match udp to any port 53
  where pkt_data contains "QQQ" detection_filter 5 per 60s by src }
rule "one alert per destination" { id 13 match udp to any port 53
  where pkt_data contains "QQQ" threshold limit 1 per 60s by dst }
rule "probe burst" { id 14 match udp to any port 53
  where pkt_data contains "QQQ" window 60s by src.ip: count() >= 4 }
"""


def _capture(path: Path, step: float = 0.01) -> None:
    """Web sessions and DNS queries from two clients, each to many servers, interleaved,
    a frame every `step` seconds."""
    frames = []
    for i in range(24):
        client = f"10.0.0.{1 + i % 2}"
        server = f"192.0.2.{10 + i}"
        sport = 40000 + i
        frames += [
            IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="S", seq=100),
            IP(src=server, dst=client) / TCP(sport=80, dport=sport, flags="SA", seq=500, ack=101),
            IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="A", seq=101, ack=501),
            IP(src=client, dst=server)
            / TCP(sport=sport, dport=80, flags="PA", seq=101, ack=501)
            / (b"GET /admin HTTP/1.1\r\n\r\n" if i % 3 == 0 else b"GET / HTTP/1.1\r\n\r\n"),
            IP(src=client, dst=f"198.51.100.{i % 5}") / UDP(sport=50000 + i, dport=53) / b"QQQ",
        ]
    out = [Ether(**MACS) / f for f in frames]
    for k, f in enumerate(out):
        f.time = 1_700_000_000 + k * step
    wrpcap(str(path), out)


def _results(
    pcap: Path, matcher: Matcher, workers: int, batch_size: int, **options: Any
) -> Iterator[BatchResult]:
    """The results of one process (`workers` 1) or of sharded workers over `pcap`."""
    reopen: Callable[[], Source] = partial(PcapSource, pcap, batch_size=batch_size)
    with reopen() as source:
        if workers == 1:
            yield from iter_matches(source, matcher, **options)
        else:
            yield from iter_matches_sharded(source, reopen, matcher, workers, **options)


def _run(
    pcap: Path, matcher: Matcher, workers: int, *, batch_size: int | None = None
) -> list[Alert]:
    checksums = checksum_validator("all")
    alerts: list[Alert] = []
    for result in _results(pcap, matcher, workers, batch_size or 65_536, checksums=checksums):
        alerts += result.alerts
    return alerts + matcher.finish()


def _keys(alerts: list[Alert]) -> list[tuple[int, int | None]]:
    return [(a.match.rule_id, a.match.packet) for a in alerts]


def test_a_flow_goes_to_one_worker_both_ways_and_flows_spread_over_workers(
    tmp_path: Path,
) -> None:
    _capture(tmp_path / "t.pcap")
    with open_source("pcap", str(tmp_path / "t.pcap")) as source:
        batch = source.next_batch()
    assert batch is not None
    rows = decode(batch).rows
    shards = flow_shards(rows, 2)
    by_flow: dict[tuple[object, ...], set[int]] = {}
    for row, shard in zip(rows, shards.tolist(), strict=True):
        ends = sorted(
            [(tuple(row["src"]), int(row["sport"])), (tuple(row["dst"]), int(row["dport"]))]
        )
        by_flow.setdefault((*ends, int(row["proto"])), set()).add(shard)
    assert len(by_flow) == 48
    assert all(len(s) == 1 for s in by_flow.values())
    per_worker = np.bincount([next(iter(s)) for s in by_flow.values()], minlength=2)
    assert per_worker.min() >= 12, per_worker  # neither worker idles
    kept = [int(shard_mask(decode(batch), k, 2).sum()) for k in range(2)]
    assert sum(kept) == rows.shape[0] and min(kept) > 0


def test_sharded_alerts_equal_one_process_with_thresholds_and_windows_across_shards(
    tmp_path: Path,
) -> None:
    pcap = tmp_path / "t.pcap"
    _capture(pcap)
    one = _run(pcap, matcher_for(RULES), 1, batch_size=16)
    # the thresholds and windows count DNS flows of one source that two workers match
    with open_source("pcap", str(pcap)) as source:
        batch = source.next_batch()
    assert batch is not None
    rows = decode(batch).rows
    dns = rows[rows["dport"] == 53]
    shards = flow_shards(dns, 2)
    for client in (1, 2):
        of_client = (dns["src"][:, 1] & 0xFF) == client
        assert set(shards[of_client].tolist()) == {0, 1}
    parent = matcher_for(RULES)
    sharded = _run(pcap, parent, 2, batch_size=16)
    assert _keys(sharded) == _keys(one)
    sids = [k for k, _ in _keys(one)]
    assert sids.count(11) == 8
    assert sids.count(12) == 14  # the 6th to 12th query of each source
    assert sids.count(13) == 5  # one per resolver
    assert sids.count(14) == 2  # once per source
    assert parent.stats.alerts == len(one)
    assert all(a.rate is None for a in one)
    assert {a.match.rule_id for a in sharded if a.rate is not None} == {12, 13, 14}


def _flows(pcap: Path, workers: int) -> tuple[list[tuple[object, ...]], int, int, int]:
    """Every flow record of a run (sorted), the flows counted, the rows handed on and
    the batches in which flows ended."""
    stats = PacketPathStats()
    records: list[tuple[object, ...]] = []
    rows = batches = 0
    for result in _results(pcap, matcher_for(RULES), workers, 16, stats=stats):
        if result.decoded is not None:
            rows += result.decoded.rows.shape[0]
            batches += len(result.ended) > 0
        c = result.ended.columns
        records += zip(
            c["src_lo"].tolist(),
            c["sport"].tolist(),
            c["dst_lo"].tolist(),
            c["dport"].tolist(),
            c["first_ts"].tolist(),
            c["last_ts"].tolist(),
            c["orig_pkts"].tolist(),
            c["resp_pkts"].tolist(),
            result.ended.history,
            strict=True,
        )
    return sorted(records), stats.flows, rows, batches


def test_every_shards_flows_end_in_the_results_as_in_one_process(tmp_path: Path) -> None:
    pcap = tmp_path / "t.pcap"
    _capture(pcap, step=1.0)  # two minutes: DNS flows idle out on the way
    one, counted, rows, batches = _flows(pcap, 1)
    assert len(one) == counted == 48 and batches > 1
    for workers in (2, 3):
        records, flows, handed_on, ending = _flows(pcap, workers)
        assert (records, flows, handed_on) == (one, counted, rows)
        assert ending > 1  # the workers' flows came batch by batch, not only at the end


def test_messages_cross_with_their_arrays_out_of_band_and_writable() -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    column = np.arange(300_000, dtype=np.int64)  # 2.4 MB: more than the pipe holds
    message = (3, [], {"orig_pkts": column}, FlowRecords.empty())
    try:
        # the receiver reads while the block is written, as the parent does
        post = threading.Thread(target=_send, args=(sender, message))
        post.start()
        seq, alerts, columns, records = _recv(receiver)
        post.join()
        _send(sender, ("end",))  # no arrays: no block follows
        assert _recv(receiver) == ("end",)
    finally:
        receiver.close()
        sender.close()
    assert (seq, alerts, len(records)) == (3, [], 0)
    assert np.array_equal(columns["orig_pkts"], column)
    columns["orig_pkts"][0] = -1  # writable, as an array made here would be


def test_a_message_a_worker_cannot_send_is_reported_as_its_failure() -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    outbox: queue.Queue[object] = queue.Queue()
    for message in ((0, [], lambda: None), (1, [], None), None):  # a lambda does not pickle
        outbox.put(message)
    try:
        _post(sender, outbox)  # returns: it never blocks on what follows the failure
        assert receiver.poll(10), "the failure was not reported"
        tag, trace = _recv(receiver)
        assert not receiver.poll()  # nothing after the failure
    finally:
        receiver.close()
        sender.close()
    assert tag == "error" and "pickle" in trace.lower()


def test_each_flow_is_reassembled_and_parsed_by_its_worker(tmp_path: Path) -> None:
    pcap = tmp_path / "t.pcap"
    _capture(pcap)
    text = 'rule "admin uri" { id 21 match http where http.uri contains "/admin" }'
    one = _run(pcap, matcher_for(text, inspector=Inspector()), 1)
    sharded = _run(pcap, matcher_for(text, inspector=Inspector()), 3, batch_size=7)
    assert len(one) == 8
    assert _keys(sharded) == _keys(one)
    assert [a.tx_buffers for a in sharded] == [a.tx_buffers for a in one]


def test_a_failing_worker_is_reported_not_waited_for(tmp_path: Path) -> None:
    pcap = tmp_path / "t.pcap"
    _capture(pcap)
    parent = os.getpid()

    def reopen() -> Source:
        if os.getpid() != parent:
            raise ValueError("capture vanished")
        return open_source("pcap", str(pcap))

    with reopen() as source, pytest.raises(WorkerError, match="capture vanished"):
        for _ in iter_matches_sharded(source, reopen, matcher_for(RULES), 2):
            pass


def test_rules_with_bits_per_host_are_named() -> None:
    rules = matcher_for(
        'rule "a" { id 31 match tcp where pkt_data contains "x" '
        "xbits set seen track ip_src expire 60 }\n"
        'rule "b" { id 32 match tcp where pkt_data contains "y" flowbits set other }'
    ).ruleset
    assert host_state_rules(rules) == [31]


@pytest.mark.skipif(not COMMUNITY.exists(), reason=f"{COMMUNITY} absent (shared test data)")
@pytest.mark.parametrize(
    "capture",
    ["pcaps/ndpi/1kxun.pcap", "attack-pcaps/sgr-favilli/hs-icmpScan.pcap"],
)
def test_community_rules_on_real_captures_alert_alike_with_two_workers(capture: str) -> None:
    rules, table, _ = load_rules(
        [COMMUNITY], default_variables({"HOME_NET": "any", "EXTERNAL_NET": "any"})
    )
    compiled = compile_ruleset(rules, table)
    one = _run(SHARED / capture, Matcher(compiled, inspector=Inspector()), 1)
    parent = Matcher(compiled, inspector=Inspector())
    sharded = _run(SHARED / capture, parent, 2)
    assert one, "the capture raises alerts"
    assert _keys(sharded) == _keys(one)
    assert parent.stats.alerts == len(one)


def test_a_hangup_reaches_the_workers_and_the_running_handler() -> None:
    import signal
    import subprocess
    import sys

    from engine.match.workers import _relay_hangup

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    seen: list[int] = []
    before = signal.signal(signal.SIGHUP, lambda signum, _frame: seen.append(signum))
    try:
        with _relay_hangup([child.pid]):
            os.kill(os.getpid(), signal.SIGHUP)
        assert child.wait(timeout=10) == 7  # the worker got it
        assert seen == [signal.SIGHUP]  # and so did the parent's own reload handler
        os.kill(os.getpid(), signal.SIGHUP)  # afterwards, the parent's handler alone
        assert seen == [signal.SIGHUP, signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, before)
        if child.poll() is None:
            child.kill()


def test_a_bad_checksum_on_a_tunnels_outer_row_spares_no_shard(tmp_path: Path) -> None:
    # a VXLAN packet gives a row for the outer UDP flow and one for the inner TCP flow,
    # which may fall to different workers; a wrong outer checksum makes the whole
    # packet bad in both
    frames = []
    for i in range(16):
        inner = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000 + i, dport=80, flags="PA")
        outer = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")
        frame = (
            outer
            / UDP(sport=50000 + i, dport=4789)
            / VXLAN(vni=7)
            / Ether(**MACS)
            / inner
            / b"XYZW"
        )
        frame = Ether(bytes(frame))
        if i % 2 == 0:
            frame[UDP].chksum ^= 0x0101
        frame.time = 1_700_000_000 + i * 0.01
        frames.append(frame)
    wrpcap(str(tmp_path / "vxlan.pcap"), frames)
    with open_source("pcap", str(tmp_path / "vxlan.pcap")) as source:
        batch = source.next_batch()
    assert batch is not None
    rows = decode(batch).rows
    assert rows.shape[0] == 32  # two rows per packet
    shards = flow_shards(rows, 2)
    split = [p for p in range(16) if len(set(shards[rows["pkt"] == p].tolist())) == 2]
    assert any(p % 2 == 0 for p in split)  # a bad packet with rows in both shards
    text = 'rule "inner" { id 21 match tcp where pkt_data contains "XYZW" }'
    one = _run(tmp_path / "vxlan.pcap", matcher_for(text), 1)
    two = _run(tmp_path / "vxlan.pcap", matcher_for(text), 2)
    assert _keys(one) == _keys(two) == [(21, n) for n in range(2, 17, 2)]

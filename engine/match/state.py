"""Matcher state that outlives a packet: TCP/UDP session state per flow, flowbits and
xbits, threshold and detection_filter counters, and rule `window` aggregations.

Flow-table slots are reused, so every row gets a generation number from
`session_kernel`; state kept per flow is keyed by (slot, generation) and starts
afresh when a slot's generation changes.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numba
import numpy as np

from rules import ast

# session bits per flow slot
_S_SYN = 1
_S_SYNACK = 2
_S_EST = 4
_S_ORIG = 8
_S_RESP = 16
_S_MIDSTREAM = 32


@numba.njit(cache=True)
def session_kernel(
    row_flow, row_dir, row_new, proto, tcp_flags, midstream, state, gen, out_est, out_gen
):
    """Per row: whether its flow is established (after this packet) and the slot's generation.

    TCP is established once the three-way handshake completes (the initiator's ACK
    after a SYN-ACK), or, for a flow picked up mid-stream when `midstream` allows it
    (Snort's default; Suricata's stream.midstream), once both sides have sent; other
    protocols once both sides have sent.
    """
    for i in range(row_flow.shape[0]):
        s = row_flow[i]
        if s < 0:
            out_est[i] = 0
            out_gen[i] = 0
            continue
        if row_new[i]:
            gen[s] += 1
            state[s] = 0
        st = state[s]
        d = row_dir[i]
        st |= _S_ORIG if d == 0 else _S_RESP
        if proto[i] == 6:
            f = tcp_flags[i]
            syn = (f & 0x02) != 0
            ack = (f & 0x10) != 0
            if row_new[i] and not syn:
                st |= _S_MIDSTREAM
            if syn and not ack and d == 0:
                st |= _S_SYN
            elif syn and ack and d == 1:
                st |= _S_SYNACK
            elif ack and not syn and d == 0 and (st & _S_SYNACK) != 0:
                st |= _S_EST
            if midstream and (st & _S_MIDSTREAM) != 0 and (st & _S_ORIG) and (st & _S_RESP):
                st |= _S_EST
        elif (st & _S_ORIG) != 0 and (st & _S_RESP) != 0:
            st |= _S_EST
        state[s] = st
        out_est[i] = 1 if (st & _S_EST) != 0 else 0
        out_gen[i] = gen[s]


class SessionState:
    """Established state and generations for every flow-table slot."""

    def __init__(self, slots: int, *, midstream: bool = True) -> None:
        self.midstream = midstream
        self.state = np.zeros(slots, dtype=np.int64)
        self.gen = np.zeros(slots, dtype=np.int64)

    def update(
        self,
        row_flow: np.ndarray,
        row_dir: np.ndarray,
        row_new: np.ndarray,
        proto: np.ndarray,
        tcp_flags: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        n = row_flow.shape[0]
        if n and int(row_flow.max(initial=-1)) >= self.state.shape[0]:
            grow = int(row_flow.max()) + 1
            self.state = np.concatenate([self.state, np.zeros(grow, dtype=np.int64)])
            self.gen = np.concatenate([self.gen, np.zeros(grow, dtype=np.int64)])
        est = np.zeros(n, dtype=np.uint8)
        gen = np.zeros(n, dtype=np.int64)
        if n:
            session_kernel(
                row_flow.astype(np.int64, copy=False),
                row_dir.astype(np.int8, copy=False),
                row_new.astype(np.int8, copy=False),
                proto,
                tcp_flags,
                self.midstream,
                self.state,
                self.gen,
                est,
                gen,
            )
        return est, gen


@dataclass(slots=True)
class BitStore:
    """Flowbits per flow (keyed by slot and generation) and xbits per tracked address."""

    flows: dict[int, tuple[int, set[str]]] = field(default_factory=dict)
    hosts: dict[tuple[str, Hashable], dict[str, float]] = field(default_factory=dict)

    def flow_bits(self, slot: int, gen: int) -> set[str]:
        entry = self.flows.get(slot)
        if entry is None or entry[0] != gen:
            bits: set[str] = set()
            self.flows[slot] = (gen, bits)
            return bits
        return entry[1]

    def host_bits(self, track: str, key: Hashable, now: float) -> set[str]:
        entry = self.hosts.get((track, key))
        if not entry:
            return set()
        return {name for name, expiry in entry.items() if expiry >= now}

    def set_host_bit(
        self, track: str, key: Hashable, name: str, now: float, expire: int | None
    ) -> None:
        self.hosts.setdefault((track, key), {})[name] = now + (expire or 3600)

    def unset_host_bit(self, track: str, key: Hashable, name: str) -> None:
        self.hosts.get((track, key), {}).pop(name, None)


@dataclass(slots=True)
class ThresholdState:
    """Snort/Suricata `threshold` and `detection_filter` counters by tracking key."""

    counters: dict[tuple[int, int, Hashable], list[float]] = field(default_factory=dict)

    def allow(
        self, rule_key: int, th_index: int, th: ast.Threshold, key: Hashable, ts: float
    ) -> bool:
        """Record one match; whether it may alert."""
        slot = (rule_key, th_index, key)
        entry = self.counters.get(slot)
        if entry is None or ts - entry[0] >= th.seconds:
            entry = [ts, 0.0]
            self.counters[slot] = entry
        entry[1] += 1
        count = int(entry[1])
        if th.kind == "limit":
            return count <= th.count
        if th.kind == "threshold":
            if count >= th.count:
                entry[0] = ts
                entry[1] = 0
                return True
            return False
        if th.kind == "both":
            return count == th.count
        # detection_filter: alert on every match after `count` in the window
        return count > th.count


_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(slots=True)
class WindowState:
    """A rule `window` clause: matching events per group key over a sliding time span."""

    events: dict[tuple[int, Hashable], deque[tuple[float, object]]] = field(default_factory=dict)

    def observe(
        self, rule_key: int, window: ast.Window, key: Hashable, value: object, ts: float
    ) -> bool:
        """Add one matching event; whether the aggregate now passes the comparison."""
        q = self.events.setdefault((rule_key, key), deque())
        q.append((ts, value))
        horizon = ts - window.duration.seconds
        while q and q[0][0] < horizon:
            q.popleft()
        fn = window.aggregate.function
        values = [v for _, v in q]
        if fn == "count":
            agg: float = len(values)
        elif fn == "distinct":
            agg = len(set(values))
        else:
            nums = [float(v) for v in values if isinstance(v, int | float)]
            if not nums:
                return False
            if fn == "sum":
                agg = sum(nums)
            elif fn == "min":
                agg = min(nums)
            elif fn == "max":
                agg = max(nums)
            else:
                agg = sum(nums) / len(nums)
        return _OPS[window.operator](agg, window.threshold)

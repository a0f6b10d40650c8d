"""TCP sessions seen from one side only, as Suricata treats them without `stream.async-oneside`.

Suricata hands TCP data to its application layer once the peer has acknowledged
it. A session of which only one side is seen is never acknowledged, so rules on
its application protocol match only when the flow ends, on everything that side
sent, and their alerts carry no packet. The matcher evaluates such rules packet
by packet as usual; this module holds their alerts back while the other side has
not been seen, keeps what the seen side sent, and releases the held alerts if
the other side shows up after all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bytes of one side kept for the end-of-flow match.
PAYLOAD_LIMIT = 65536


@dataclass(slots=True)
class OneSided:
    """A session seen from one side so far: that side's bytes, its last row, the
    application protocol detected on it, and the alerts held back."""

    gen: int
    side: int = 0  # 0: to the server
    row: np.ndarray | None = None  # a one-row copy of the side's last packet row
    linktype: int = 1
    payload: bytearray = field(default_factory=bytearray)
    app_proto: str | None = None
    alerts: list[Any] = field(default_factory=list)


class OneSidedSessions:
    """Which directions of each TCP flow (slot and generation) were seen, and the
    sessions seen from one side only."""

    __slots__ = ("_batch", "_first", "pending", "sides")

    def __init__(self) -> None:
        self.sides: dict[int, tuple[int, int]] = {}  # slot -> (generation, direction bits)
        self.pending: dict[int, OneSided] = {}
        self._batch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._first: dict[tuple[int, int, int], int] | None = None

    def begin(
        self, row_flow: np.ndarray, gen: np.ndarray, row_dir: np.ndarray, proto: np.ndarray
    ) -> None:
        """A new batch: the rows whose order `other_side_seen` looks at."""
        self._batch = (row_flow, gen, row_dir, proto)
        self._first = None

    def other_side_seen(self, r: int) -> bool:
        """Whether the flow of row `r` showed its other direction before that row."""
        assert self._batch is not None
        row_flow, gen, row_dir, proto = self._batch
        slot, g, d = int(row_flow[r]), int(gen[r]), int(row_dir[r] != 0)
        entry = self.sides.get(slot)
        if entry is not None and entry[0] == g and entry[1] & (1 << (1 - d)):
            return True
        if self._first is None:
            self._first = {}
            tcp = np.nonzero((proto == 6) & (row_flow >= 0))[0]
            keys = zip(
                row_flow[tcp].tolist(), gen[tcp].tolist(), (row_dir[tcp] != 0).tolist(), strict=True
            )
            for i, key in zip(tcp.tolist(), keys, strict=True):
                self._first.setdefault((key[0], key[1], int(key[2])), i)
        first = self._first.get((slot, g, 1 - d))
        return first is not None and first < r

    def hold(self, slot: int, gen: int, side: int, alert: Any) -> None:
        pending = self.pending.get(slot)
        if pending is None or pending.gen != gen:
            pending = OneSided(gen, side)
            self.pending[slot] = pending
        pending.alerts.append(alert)

    def update(
        self,
        rows: np.ndarray,
        data: np.ndarray,
        pstart: np.ndarray,
        plen: np.ndarray,
        contexts: dict[int, Any],
        linktype: int,
    ) -> tuple[list[Any], list[tuple[int, OneSided]]]:
        """After a batch: record the directions its rows showed; return the alerts held
        for sessions whose other side appeared, and the one-sided sessions whose slot
        now holds another flow (they ended)."""
        assert self._batch is not None
        row_flow, gen, row_dir, proto = self._batch
        n = rows.shape[0]
        released: list[Any] = []
        ended: list[tuple[int, OneSided]] = []
        tcp = np.nonzero((proto[:n] == 6) & (row_flow[:n] >= 0))[0]
        if not tcp.shape[0]:
            return released, ended
        keys = np.stack(
            [row_flow[tcp].astype(np.int64), gen[tcp].astype(np.int64), row_dir[tcp] != 0],
            axis=1,
        )
        sides = self.sides
        pending = self.pending
        for slot, g, d in np.unique(keys, axis=0).tolist():
            entry = sides.get(slot)
            if entry is None or entry[0] != g:
                old = pending.get(slot)
                if old is not None and old.gen != g:
                    ended.append((slot, pending.pop(slot)))
                entry = (g, 0)
            sides[slot] = (g, entry[1] | (1 << d))
        for slot in list(pending):
            g, bits = sides.get(slot, (-1, 0))
            if g == pending[slot].gen and bits == 3:
                released += pending.pop(slot).alerts
        # keep what one-sided sessions sent
        flows = row_flow[tcp].tolist()
        gens = gen[tcp].tolist()
        for r, slot, g in zip(tcp.tolist(), flows, gens, strict=True):
            g_seen, bits = sides[slot]
            if bits == 3 or g_seen != g:
                continue
            length = int(plen[r])
            one = pending.get(slot)
            if one is None:
                if not length:
                    continue
                one = OneSided(g, int(row_dir[r] != 0))
                pending[slot] = one
            one.row = rows[r : r + 1].copy()
            one.linktype = linktype
            ctx = contexts.get(r)
            if ctx is not None and ctx.app_proto is not None:
                one.app_proto = ctx.app_proto
            room = PAYLOAD_LIMIT - len(one.payload)
            if length and room > 0:
                start = int(pstart[r])
                one.payload += data[start : start + min(length, room)].tobytes()
        return released, ended

    def end(self, slot: int) -> OneSided | None:
        """Forget the flow in `slot`; its one-sided session, if it was one."""
        self.sides.pop(slot, None)
        return self.pending.pop(slot, None)

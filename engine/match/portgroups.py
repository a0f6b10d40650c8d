"""Port groups: the packet-payload prefilter's fast patterns split by the ports that reach them.

One database of every packet-payload fast pattern makes each payload pay for every
rule's literal, and report the hits of rules its ports rule out. Snort 3 (port
groups) and Suricata (signature group heads) scan a packet with the patterns of
the rules its protocol and ports can admit; Shrike does the same:

- Ports fall into classes: two ports share a class when every port set of the
  rules names both or neither.
- Per transport (TCP, UDP) and class `c`: `D[c]`, the patterns of rules whose
  destination ports admit `c` without admitting every port; `S[c]`, of rules with
  any destination port whose source ports admit `c` without admitting every port;
  `G`, of rules with any port both ways. A `<>` or `=>` header adds its reversed
  term (source ports as destination).
- A packet from port `s` to port `d` is scanned with `D[d] + G` when `D[d]` has
  patterns, and then also with `S[s]` when it has; else with `S[s] + G`; else with
  `G`. Every rule whose header admits the packet has its pattern there (a
  superset: the exact header test follows), so the alerts are those of one
  database of everything. Other protocols (ICMP, SCTP, ...) have one group: the
  patterns of every rule on any of them.
- The distinct sets (a few hundred for the Snort 3 community rules) are merged
  into a few databases (`GROWTH`, `SLACK`): 11 for the community rules, of 26 to
  742 of their 1,256 payload patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.match.literals import LiteralDatabase

#: Transports with port classes of their own; every other protocol is one group.
FAMILIES = (6, 17)
OTHER = len(FAMILIES)
#: How far a merge may grow the smaller of the sets it joins: by as many patterns as it
#: holds, or by `SLACK` (a small database scans fast whatever it holds). Hyperscan
#: compiles a database of a few hundred literals in 0.1-0.3 s, and scans one of 742
#: as fast as one of 475 (the community rules' HTTP groups): fewer, larger databases
#: cost the scans nothing measurable and the start-up a second less than 28 tight ones.
GROWTH = 1.0
SLACK = 64


@dataclass(slots=True)
class PortGroups:
    """Which databases scan the payload of a packet, by its protocol and ports.

    For TCP and UDP (family 0 and 1) and port class `c` (`port_class[port]`):
    `dst[f, c]` scans `D[c] + G` and `src[f, c]` scans `S[c] + G`; `src_only[f, c]`
    scans `S[c]` beside a `dst` database. -1 where the set is empty. `generic[f]`
    scans `G` (family 2: every other protocol). `members[k]` are the pattern ids of
    database `databases[k]` (ids of the buffer's `PatternDatabase`).
    """

    port_class: np.ndarray
    dst: np.ndarray
    src: np.ndarray
    src_only: np.ndarray
    generic: np.ndarray
    members: list[np.ndarray]
    databases: list[LiteralDatabase] = field(default_factory=list)

    def route(
        self, proto: np.ndarray, sport: np.ndarray, dport: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per packet, the database its payload is scanned with (-1: none) and the
        second one it is also scanned with (-1: none)."""
        family = np.full(proto.shape[0], OTHER, dtype=np.int64)
        for f, p in enumerate(FAMILIES):
            family[proto == p] = f
        first = self.generic[family]
        second = np.full(proto.shape[0], -1, dtype=np.int64)
        ported = np.nonzero(family < OTHER)[0]
        if ported.shape[0]:
            fam = family[ported]
            d = self.dst[fam, self.port_class[dport[ported]]]
            cs = self.port_class[sport[ported]]
            s = self.src[fam, cs]
            first[ported] = np.where(d >= 0, d, np.where(s >= 0, s, first[ported]))
            second[ported] = np.where(d >= 0, self.src_only[fam, cs], -1)
        return first, second


def port_classes(port_sets: np.ndarray, used: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The class of each port under the port sets `used` (rows of `port_sets`), and
    one port of each class."""
    if not used:
        return np.zeros(65536, dtype=np.int64), np.zeros(1, dtype=np.int64)
    packed = np.packbits(port_sets[list(used)].T, axis=1)  # a row of bits per port
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, classes = np.unique(keys, return_index=True, return_inverse=True)
    return classes.ravel().astype(np.int64), first.astype(np.int64)


def build_port_groups(
    patterns: Sequence[Sequence[tuple[frozenset[int], int, int, bool]]],
    port_sets: np.ndarray,
) -> PortGroups:
    """Port groups for patterns whose rules have the headers `patterns[i]`, each
    (protocols, source port set, destination port set, either way round) with port
    sets as rows of `port_sets`. Its `databases` are left to the caller to compile,
    one per entry of `members`."""
    n = len(patterns)
    used = sorted({s for headers in patterns for _, sp, dp, _ in headers for s in (sp, dp)})
    port_class, rep = port_classes(port_sets, used)
    nc = rep.shape[0]
    # per port set: the classes it admits, and whether it admits every port
    admits = {s: port_sets[s][rep] for s in used}
    every = {s: bool(port_sets[s].all()) for s in used}
    dsets = np.zeros((len(FAMILIES), nc, n), dtype=bool)
    ssets = np.zeros((len(FAMILIES), nc, n), dtype=bool)
    gsets = np.zeros((len(FAMILIES) + 1, n), dtype=bool)
    for pid, headers in enumerate(patterns):
        for protocols, sport, dport, both in headers:
            if not protocols <= set(FAMILIES):
                gsets[OTHER, pid] = True
            terms = [(sport, dport), (dport, sport)] if both else [(sport, dport)]
            for f, p in enumerate(FAMILIES):
                if p not in protocols:
                    continue
                for src, dst in terms:
                    if not every[dst]:
                        dsets[f, admits[dst], pid] = True
                    elif not every[src]:
                        ssets[f, admits[src], pid] = True
                    else:
                        gsets[f, pid] = True
    # sets scanned first (with G) and second (without): merged apart, so that a
    # second scan does not meet G's patterns again
    wanted: tuple[dict[bytes, np.ndarray], dict[bytes, np.ndarray]] = ({}, {})

    def want(bits: np.ndarray, second: bool = False) -> tuple[int, bytes] | None:
        if not bits.any():
            return None
        key = np.packbits(bits).tobytes()
        wanted[second].setdefault(key, bits)
        return second, key

    tables = np.full((3, len(FAMILIES), nc), None, dtype=object)
    generic_keys = [want(gsets[f]) for f in range(len(FAMILIES) + 1)]
    for f in range(len(FAMILIES)):
        for c in range(nc):
            d, s = dsets[f, c], ssets[f, c]
            if d.any():
                tables[0, f, c] = want(d | gsets[f])
            if s.any():
                tables[1, f, c] = want(s | gsets[f])
                tables[2, f, c] = want(s, second=True)
    firsts, seconds = _merge(wanted[0]), _merge(wanted[1])
    members = firsts.members + seconds.members

    def index(wanted_key: tuple[int, bytes] | None) -> int:
        if wanted_key is None:
            return -1
        second, key = wanted_key
        return seconds.of[key] + len(firsts.members) if second else firsts.of[key]

    lookup = np.vectorize(index, otypes=[np.int64])
    return PortGroups(
        port_class=port_class,
        dst=lookup(tables[0]),
        src=lookup(tables[1]),
        src_only=lookup(tables[2]),
        generic=np.array([index(k) for k in generic_keys], dtype=np.int64),
        members=members,
    )


@dataclass(slots=True)
class _Merged:
    members: list[np.ndarray]  # pattern ids per database
    of: dict[bytes, int]  # a wanted set's database


def _merge(wanted: dict[bytes, np.ndarray]) -> _Merged:
    """Wanted pattern sets merged into databases, largest first: a set joins the
    database whose union with it is smallest, if that grows the smaller of the set
    and the database's smallest member by at most `GROWTH` of it or `SLACK` patterns."""
    order = sorted(wanted, key=lambda k: (-int(wanted[k].sum()), k))
    unions: list[np.ndarray] = []
    smallest: list[int] = []
    of: dict[bytes, int] = {}
    for key in order:
        bits = wanted[key]
        size = int(bits.sum())
        best, best_size = -1, 0
        for k, union in enumerate(unions):
            grown = int(np.count_nonzero(union | bits))
            m = min(smallest[k], size)
            if grown <= m + max(int(m * GROWTH), SLACK) and (best < 0 or grown < best_size):
                best, best_size = k, grown
        if best < 0:
            unions.append(bits.copy())
            smallest.append(size)
            best = len(unions) - 1
        else:
            unions[best] |= bits
            smallest[best] = min(smallest[best], size)
        of[key] = best
    return _Merged([np.nonzero(u)[0].astype(np.int64) for u in unions], of)

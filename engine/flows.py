"""The flow table: bidirectional flows with Zeek-compatible state and CICFlowMeter-style features.

`FlowTable.update(decoded)` feeds one decoded batch through the compiled kernel
and returns the `FlowEvents` of that batch: which flow and direction each row
belongs to, and the `FlowRecords` of flows that ended. The table is bounded:
when full, the least recently seen flow is evicted (and counted), so memory
stays flat under a flood of new sources. `flush()` ends everything at the end
of the input. Features are defined in docs/flows.md.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import flowkernel as K
from engine.decode import DecodedBatch

NS = 1_000_000_000

# Ports Zeek's default analyzers register, which its role guess treats as likely servers.
LIKELY_SERVER_TCP = (
    21,
    22,
    23,
    25,
    53,
    80,
    81,
    88,
    110,
    111,
    135,
    139,
    143,
    389,
    443,
    445,
    465,
    502,
    563,
    585,
    587,
    614,
    631,
    636,
    750,
    989,
    990,
    992,
    993,
    995,
    1080,
    1433,
    1434,
    2811,
    3128,
    3268,
    3306,
    3389,
    5222,
    5223,
    5269,
    5432,
    5900,
    6379,
    6666,
    6667,
    6668,
    6669,
    8000,
    8080,
    8888,
    9200,
    11211,
    27017,
)
LIKELY_SERVER_UDP = (
    53,
    67,
    69,
    88,
    123,
    137,
    138,
    161,
    162,
    443,
    500,
    514,
    750,
    1812,
    1813,
    2123,
    2152,
    3544,
    4500,
    4789,
    5060,
    5072,
    5353,
    5355,
    6081,
    11211,
)

PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}


@dataclass(frozen=True, slots=True)
class FlowTableConfig:
    """Timeouts in seconds; defaults follow Zeek's so records compare with conn.log."""

    max_flows: int = 262_144
    tcp_timeout: float = 300.0
    udp_timeout: float = 60.0
    other_timeout: float = 60.0
    active_timeout: float = 0.0  # 0: a long flow is never cut
    tcp_close_delay: float = 5.0
    tcp_attempt_delay: float = 5.0
    activity_gap: float = 5.0  # a silence longer than this ends an active period
    dns_timeout: float = 10.0  # UDP flows to DNS ports idle out sooner
    export_buffer: int = 65_536
    expire_interval: float = 1.0  # how often (in packet time) idle flows are swept

    def __post_init__(self) -> None:
        if self.max_flows < 1:
            raise ValueError("flow table: max_flows must be at least 1")
        for name in (
            "tcp_timeout",
            "udp_timeout",
            "other_timeout",
            "tcp_close_delay",
            "tcp_attempt_delay",
            "activity_gap",
            "dns_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"flow table: {name} must be positive")
        if self.active_timeout < 0:
            raise ValueError("flow table: active_timeout must be 0 (off) or positive")


@dataclass(slots=True)
class FlowTableStats:
    created: int = 0
    ended: int = 0
    evicted: int = 0
    active: int = 0
    later_fragments: int = 0


def ip_text(hi: int, lo: int) -> str:
    """Text form of an address held as two 64-bit halves (IPv4 mapped as ::ffff:a.b.c.d).

    The halves may be numpy integers straight from a decoded row.
    """
    hi, lo = int(hi), int(lo)
    if hi == 0 and (lo >> 32) == 0xFFFF:
        v = lo & 0xFFFFFFFF
        return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def ip_bytes(hi: int, lo: int) -> bytes:
    """Packed form of an address held as two 64-bit halves (4 bytes for IPv4)."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return (lo & 0xFFFFFFFF).to_bytes(4, "big")
    return ((hi << 64) | lo).to_bytes(16, "big")


# Community ID v1 maps ICMP request types to their replies so both halves share an ID.
_CID_ICMP4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_CID_ICMP6 = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    130: 131,
    131: 130,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
    146: 147,
    147: 146,
}


# Protocols whose ports (ICMP: type and code) are part of a Community ID.
_CID_PORT_PROTOS = (1, 6, 17, 58, 132)


def community_id(
    src: str | bytes, dst: str | bytes, proto: int, sport: int, dport: int, *, seed: int = 0
) -> str:
    """Community ID v1 of a flow (ports are ICMP type and code for ICMP)."""
    s = src if isinstance(src, bytes) else ipaddress.ip_address(src).packed
    d = dst if isinstance(dst, bytes) else ipaddress.ip_address(dst).packed
    one_way = False
    if proto in (1, 58):
        table = _CID_ICMP4 if proto == 1 else _CID_ICMP6
        if sport in table:
            dport = table[sport]
        else:
            one_way = True
    if not one_way and (s > d or (s == d and sport > dport)):
        s, d, sport, dport = d, s, dport, sport
    has_ports = proto in _CID_PORT_PROTOS
    payload = seed.to_bytes(2, "big") + s + d + bytes((proto, 0))
    if has_ports:
        payload += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return "1:" + base64.b64encode(hashlib.sha1(payload).digest()).decode("ascii")


_CID_PORTS = np.zeros(256, dtype=bool)
_CID_PORTS[list(_CID_PORT_PROTOS)] = True
# per ICMP type its Community ID counterpart, -1 for none (a one-way message)
_CID_TABLES = {
    proto: np.array([table.get(t, -1) for t in range(256)], dtype=np.int64)
    for proto, table in ((1, _CID_ICMP4), (58, _CID_ICMP6))
}


def _be(values: np.ndarray, width: int) -> np.ndarray:
    """Each value as `width` big-endian bytes, one row per value."""
    dtype = {1: ">u1", 2: ">u2", 4: ">u4", 8: ">u8"}[width]
    return values.astype(dtype).view(np.uint8).reshape(-1, width)


def community_ids(
    src_hi: np.ndarray,
    src_lo: np.ndarray,
    dst_hi: np.ndarray,
    dst_lo: np.ndarray,
    proto: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
) -> list[str]:
    """`community_id` of many flows (addresses as 64-bit halves, as `ip_bytes` takes
    them): the ordering and the hashed bytes are worked out for all at once, so only
    the SHA-1 is done flow by flow."""
    n = proto.shape[0]
    out: list[str] = [""] * n
    if not n:
        return out
    shi, slo = src_hi.astype(np.uint64), src_lo.astype(np.uint64)
    dhi, dlo = dst_hi.astype(np.uint64), dst_lo.astype(np.uint64)
    p = proto.astype(np.int64)
    sp, dp = sport.astype(np.int64), dport.astype(np.int64)
    one_way = np.zeros(n, dtype=bool)
    for icmp, table in _CID_TABLES.items():
        rows = np.flatnonzero((p == icmp) & (sp >= 0) & (sp < 256))
        other = table[sp[rows]]
        one_way[rows] = other < 0
        dp[rows] = np.where(other < 0, dp[rows], other)
    one_way |= np.isin(p, (1, 58)) & ((sp < 0) | (sp >= 256))
    mapped = np.uint64(0xFFFF << 32)
    s4 = (shi == 0) & ((slo >> np.uint64(32)) == np.uint64(0xFFFF))
    d4 = (dhi == 0) & ((dlo >> np.uint64(32)) == np.uint64(0xFFFF))
    # same family: packed bytes compare as the halves do (IPv4 shares its ::ffff: prefix)
    greater = (shi > dhi) | ((shi == dhi) & (slo > dlo))
    same = (shi == dhi) & (slo == dlo)
    swap = ~one_way & (greater | (same & (sp > dp)))
    ahi, alo = np.where(swap, dhi, shi), np.where(swap, dlo, slo)
    bhi, blo = np.where(swap, shi, dhi), np.where(swap, slo, dlo)
    ap, bp = np.where(swap, dp, sp), np.where(swap, sp, dp)
    ports = _CID_PORTS[p & 255] & (p < 256)
    sha1, b64 = hashlib.sha1, base64.b64encode
    for v4 in (True, False):
        for with_ports in (True, False):
            rows = np.flatnonzero(
                (s4 == v4) & (d4 == v4) & (ports == with_ports) & (p >= 0) & (p < 256)
            )
            if not rows.shape[0]:
                continue
            parts = [np.zeros((rows.shape[0], 2), dtype=np.uint8)]  # the seed, 0
            for hi, lo in ((ahi, alo), (bhi, blo)):
                if v4:
                    parts.append(_be(lo[rows] & ~mapped, 4))
                else:
                    parts += [_be(hi[rows], 8), _be(lo[rows], 8)]
            parts += [_be(p[rows], 1), np.zeros((rows.shape[0], 1), dtype=np.uint8)]
            if with_ports:
                parts += [_be(ap[rows] & 0xFFFF, 2), _be(bp[rows] & 0xFFFF, 2)]
            blob = np.ascontiguousarray(np.hstack(parts)).tobytes()
            width = len(blob) // rows.shape[0]
            for k, i in enumerate(rows.tolist()):
                digest = sha1(blob[k * width : (k + 1) * width]).digest()
                out[i] = "1:" + b64(digest).decode("ascii")
    # the rest (mixed families, odd protocol numbers) one by one
    for i in (np.flatnonzero(~((s4 == d4) & (p >= 0) & (p < 256)))).tolist():
        out[i] = community_id(
            ip_bytes(int(shi[i]), int(slo[i])),
            ip_bytes(int(dhi[i]), int(dlo[i])),
            int(p[i]),
            int(sport[i]),
            int(dport[i]),
        )
    return out


def group(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by the tuple of columns (each taken as uint64): the index of each
    group's first row, and each row's group. Groups come in the order of the rows'
    bytes (each column's 8 little-endian bytes in turn), as sorting the rows as raw
    records orders them: values with their bytes reversed sort that way as numbers,
    several times faster than records."""
    n = len(columns[0])
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    cols = [np.asarray(c).astype(np.uint64).byteswap() for c in columns]
    order = np.lexsort(cols[::-1])  # stable: each group's first row leads it
    same = np.ones(n - 1, dtype=bool)
    for c in cols:
        ordered = c[order]
        same &= ordered[1:] == ordered[:-1]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~same
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return order[starts], inverse


def ip_texts(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """`ip_text` of many addresses, each distinct one written once (flows repeat them)."""
    if not len(hi):
        return []
    first, at = group(hi, lo)
    texts = np.array(
        [ip_text(h, low) for h, low in zip(hi[first].tolist(), lo[first].tolist(), strict=True)],
        dtype=object,
    )
    return texts[at].tolist()


def conn_state(
    proto: int, os_: int, rs: int, orig_bytes: int, resp_bytes: int, history: str
) -> str:
    """Zeek's conn_state from the two endpoint states."""
    if proto == 6:
        o_inactive = os_ in (K.TCP_INACTIVE, K.TCP_PARTIAL)
        r_inactive = rs in (K.TCP_INACTIVE, K.TCP_PARTIAL)
        if rs == K.TCP_RESET:
            if os_ in (K.TCP_SYN_SENT, K.TCP_SYN_ACK_SENT) or (
                os_ == K.TCP_RESET and orig_bytes == 0 and resp_bytes == 0
            ):
                return "REJ"
            return "RSTRH" if o_inactive else "RSTR"
        if os_ == K.TCP_RESET:
            if r_inactive:
                h = history[1:] if history.startswith("^") else history
                if h.startswith("S") and "R" in h:
                    upto = h[1 : h.index("R")]
                    if not any(c in "HAFGIQ" for c in upto):
                        return "RSTOS0"
                return "OTH"
            return "RSTO"
        if rs == K.TCP_CLOSED and os_ == K.TCP_CLOSED:
            return "SF"
        if os_ == K.TCP_CLOSED:
            return "SH" if r_inactive else "S2"
        if rs == K.TCP_CLOSED:
            return "SHR" if o_inactive else "S3"
        if os_ == K.TCP_SYN_SENT and rs == K.TCP_INACTIVE:
            return "S0"
        if os_ == K.TCP_ESTABLISHED and rs == K.TCP_ESTABLISHED:
            return "S1"
        return "OTH"
    if proto == 17:
        if os_:
            return "SF" if rs else "S0"
        return "SHR" if rs else "OTH"
    return "OTH"


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _std(sumsq: np.ndarray, total: np.ndarray, n: np.ndarray, scale: float) -> np.ndarray:
    mean = _safe_div(total / scale, n)
    var = _safe_div(sumsq, n) - mean * mean
    return np.sqrt(np.clip(var, 0.0, None))


def round6(values: np.ndarray) -> np.ndarray:
    """`round(v, 6)` of each value, a float at a time only where numpy could round
    otherwise: Python rounds the exact decimal value (a microsecond each), numpy
    scales by a million first, which decides differently when the product's rounding
    error (half a unit in its last place) reaches a tie. Past 2**52 millionths the
    product has no fraction left, and the error bound alone sends those to Python."""
    with np.errstate(invalid="ignore"):  # NaN and infinity stay as they are
        scaled = values * 1e6
        out = np.rint(scaled) / 1e6
        error = np.maximum(np.abs(scaled) * 2.0**-52, 1e-6)
        near = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < error
    for i in np.flatnonzero(near).tolist():
        out[i] = round(float(values[i]), 6)
    return out


@dataclass(frozen=True, slots=True)
class FlowRecords:
    """Ended flows, column by column (numpy arrays), plus their history strings."""

    columns: dict[str, np.ndarray]
    history: list[str]

    def __len__(self) -> int:
        return len(self.history)

    @classmethod
    def empty(cls) -> FlowRecords:
        return cls.from_state(
            np.zeros((0, K.NI), np.int64),
            np.zeros((0, K.NF)),
            np.zeros((0, 4), np.uint64),
            np.zeros((0, K.HISTORY_MAX), np.uint8),
        )

    @classmethod
    def from_state(
        cls, EI: np.ndarray, EF: np.ndarray, EU: np.ndarray, EH: np.ndarray
    ) -> FlowRecords:
        """Build records from exported state rows; copies what it keeps (the inputs may be reused)."""
        raw = K.gather_columns(EI, _KEEP_INDEX)  # one pass copies every kept counter
        c: dict[str, np.ndarray] = {name: raw[k] for k, name in enumerate(_KEEP)}
        col = c.__getitem__

        def fcol(name: str) -> np.ndarray:
            return EF[:, K.F_COLUMNS.index(name)]

        # fixed-width byte strings drop their trailing NULs
        history = [
            h.decode() for h in np.ascontiguousarray(EH).view(f"S{K.HISTORY_MAX}").ravel().tolist()
        ]
        c["src_hi"], c["src_lo"], c["dst_hi"], c["dst_lo"] = (EU[:, k].copy() for k in range(4))
        first, last = col("first_ts"), col("last_ts")
        c["ts"] = first / NS
        dur = (last - first) / NS
        c["duration"] = dur
        fp, bp = col("orig_pkts"), col("resp_pkts")
        fb, bb = col("orig_ip_bytes"), col("resp_ip_bytes")
        n = fp + bp
        c["pkt_len_min"] = col("len_min")
        c["pkt_len_max"] = col("len_max")
        c["pkt_len_mean"] = _safe_div((fb + bb).astype(np.float64), n)
        var = _safe_div(fcol("len_sumsq"), n) - c["pkt_len_mean"] ** 2
        c["pkt_len_var"] = np.clip(var, 0.0, None)
        c["pkt_len_std"] = np.sqrt(c["pkt_len_var"])
        for side, pk, by, sq in (
            ("fwd", fp, fb, "fwd_len_sumsq"),
            ("bwd", bp, bb, "bwd_len_sumsq"),
        ):
            c[f"{side}_pkt_len_min"] = np.where(pk > 0, col(f"{side}_len_min"), 0)
            c[f"{side}_pkt_len_max"] = col(f"{side}_len_max")
            mean = _safe_div(by.astype(np.float64), pk)
            c[f"{side}_pkt_len_mean"] = mean
            c[f"{side}_pkt_len_std"] = np.sqrt(
                np.clip(_safe_div(fcol(sq), pk) - mean**2, 0.0, None)
            )
        c["flow_bytes_per_s"] = _safe_div((fb + bb).astype(np.float64), dur)
        c["flow_pkts_per_s"] = _safe_div(n.astype(np.float64), dur)
        c["fwd_pkts_per_s"] = _safe_div(fp.astype(np.float64), dur)
        c["bwd_pkts_per_s"] = _safe_div(bp.astype(np.float64), dur)
        c["fwd_bytes_per_s"] = _safe_div(fb.astype(np.float64), dur)
        c["bwd_bytes_per_s"] = _safe_div(bb.astype(np.float64), dur)
        c["down_up_ratio"] = _safe_div(bp.astype(np.float64), fp)
        for prefix in ("iat", "fwd_iat", "bwd_iat", "active", "idle"):
            cnt = col(f"{prefix}_n")
            total = col(f"{prefix}_sum")
            c[f"{prefix}_total"] = total / NS
            c[f"{prefix}_mean"] = _safe_div(total / NS, cnt)
            c[f"{prefix}_std"] = _std(fcol(f"{prefix}_sumsq"), total, cnt, NS)
            c[f"{prefix}_min"] = col(f"{prefix}_min") / NS
            c[f"{prefix}_max"] = col(f"{prefix}_max") / NS
        return cls(columns=c, history=history)

    @classmethod
    def concat(cls, parts: list[FlowRecords]) -> FlowRecords:
        """The records of `parts`, one after another."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        cols = {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns}
        return cls(columns=cols, history=[h for p in parts for h in p.history])

    def conn_states(self) -> list[str]:
        """Each flow's `conn_state`, worked out once per distinct input: the history
        counts only for a TCP flow its originator reset, the byte counts only in
        whether both are zero."""
        c = self.columns
        if not len(self):
            return []
        proto = c["proto"].astype(np.int64)
        ost, rst = c["o_state"].astype(np.int64), c["r_state"].astype(np.int64)
        quiet = (c["orig_bytes"] == 0) & (c["resp_bytes"] == 0)
        key = ((proto * 256 + ost) * 256 + rst) * 2 + quiet
        _, first, at = np.unique(key, return_index=True, return_inverse=True)
        names = np.array(
            [
                conn_state(int(proto[i]), int(ost[i]), int(rst[i]), int(not q), int(not q), "")
                for i, q in zip(first.tolist(), quiet[first].tolist(), strict=True)
            ],
            dtype=object,
        )
        out: list[str] = names[at.reshape(-1)].tolist()
        for i in np.flatnonzero((proto == 6) & (ost == K.TCP_RESET)).tolist():
            out[i] = conn_state(
                6,
                K.TCP_RESET,
                int(rst[i]),
                int(c["orig_bytes"][i]),
                int(c["resp_bytes"][i]),
                self.history[i],
            )
        return out

    def display_columns(self) -> dict[str, list[Any]]:
        """Per field of the `shrike flows` schema, every flow's value, initiator first:
        addresses as text, names for protocols and end reasons, times rounded to the
        microsecond. The features are `rounded_features`."""
        c = self.columns
        protos = c["proto"].tolist()
        return {
            "ts": round6(c["ts"]).tolist(),
            "src_ip": ip_texts(c["src_hi"], c["src_lo"]),
            "src_port": c["sport"].tolist(),
            "dst_ip": ip_texts(c["dst_hi"], c["dst_lo"]),
            "dst_port": c["dport"].tolist(),
            "proto": [PROTO_NAMES.get(p, "unknown_transport") for p in protos],
            "ip_proto": protos,
            "community_id": community_ids(
                c["src_hi"],
                c["src_lo"],
                c["dst_hi"],
                c["dst_lo"],
                c["proto"],
                c["sport"],
                c["dport"],
            ),
            "duration": round6(c["duration"]).tolist(),
            "orig_pkts": c["orig_pkts"].tolist(),
            "resp_pkts": c["resp_pkts"].tolist(),
            "orig_ip_bytes": c["orig_ip_bytes"].tolist(),
            "resp_ip_bytes": c["resp_ip_bytes"].tolist(),
            "orig_bytes": c["orig_bytes"].tolist(),
            "resp_bytes": c["resp_bytes"].tolist(),
            "conn_state": self.conn_states(),
            "history": self.history,
            "end_reason": [K.END_REASONS[k] for k in c["end_reason"].tolist()],
            "vlan": c["vlan"].tolist(),
        }

    def rounded_features(self) -> dict[str, np.ndarray]:
        """The FEATURES columns, floats rounded to 6 places (`round6`)."""
        c = self.columns
        return {n: round6(c[n]) if c[n].dtype.kind == "f" else c[n] for n in FEATURES}

    def to_dicts(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready dict per flow, initiator first (the `shrike flows` schema)."""
        columns = self.display_columns()
        columns.update((n, v.tolist()) for n, v in self.rounded_features().items())
        names = list(columns)
        for values in zip(*columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))


# Raw state columns a record keeps (derived features are computed from them).
_KEEP: tuple[str, ...] = (
    "proto",
    "sport",
    "dport",
    "ipver",
    "vlan",
    "uid",
    "flipped",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "o_state",
    "r_state",
    "first_ttl",
    "min_ttl",
    "max_ttl",
    "first_tos",
    "fin",
    "syn",
    "rst",
    "psh",
    "ack",
    "urg",
    "ece",
    "cwr",
    "fwd_psh",
    "bwd_psh",
    "fwd_urg",
    "bwd_urg",
    "fwd_hdr_bytes",
    "bwd_hdr_bytes",
    "fwd_init_win",
    "bwd_init_win",
    "fwd_data_pkts",
    "end_reason",
    "src_mac",
    "dst_mac",
    "first_ts",
    "last_ts",
    "len_min",
    "len_max",
    "fwd_len_min",
    "fwd_len_max",
    "bwd_len_min",
    "bwd_len_max",
    "iat_n",
    "iat_sum",
    "iat_min",
    "iat_max",
    "fwd_iat_n",
    "fwd_iat_sum",
    "fwd_iat_min",
    "fwd_iat_max",
    "bwd_iat_n",
    "bwd_iat_sum",
    "bwd_iat_min",
    "bwd_iat_max",
    "active_n",
    "active_sum",
    "active_min",
    "active_max",
    "idle_n",
    "idle_sum",
    "idle_min",
    "idle_max",
)
_KEEP_INDEX = np.array([K.I_COLUMNS.index(n) for n in _KEEP], dtype=np.intp)

# The feature columns every record carries, in output order (documented in docs/flows.md).
FEATURES: tuple[str, ...] = (
    "ipver",
    "first_ttl",
    "min_ttl",
    "max_ttl",
    "first_tos",
    "fin",
    "syn",
    "rst",
    "psh",
    "ack",
    "urg",
    "ece",
    "cwr",
    "fwd_psh",
    "bwd_psh",
    "fwd_urg",
    "bwd_urg",
    "pkt_len_min",
    "pkt_len_max",
    "pkt_len_mean",
    "pkt_len_std",
    "pkt_len_var",
    "fwd_pkt_len_min",
    "fwd_pkt_len_max",
    "fwd_pkt_len_mean",
    "fwd_pkt_len_std",
    "bwd_pkt_len_min",
    "bwd_pkt_len_max",
    "bwd_pkt_len_mean",
    "bwd_pkt_len_std",
    "flow_bytes_per_s",
    "flow_pkts_per_s",
    "fwd_bytes_per_s",
    "bwd_bytes_per_s",
    "fwd_pkts_per_s",
    "bwd_pkts_per_s",
    "down_up_ratio",
    "iat_mean",
    "iat_std",
    "iat_min",
    "iat_max",
    "fwd_iat_total",
    "fwd_iat_mean",
    "fwd_iat_std",
    "fwd_iat_min",
    "fwd_iat_max",
    "bwd_iat_total",
    "bwd_iat_mean",
    "bwd_iat_std",
    "bwd_iat_min",
    "bwd_iat_max",
    "active_mean",
    "active_std",
    "active_min",
    "active_max",
    "idle_mean",
    "idle_std",
    "idle_min",
    "idle_max",
    "fwd_hdr_bytes",
    "bwd_hdr_bytes",
    "fwd_init_win",
    "bwd_init_win",
    "fwd_data_pkts",
)


@dataclass(frozen=True, slots=True)
class FlowEvents:
    """What one batch did to the table.

    `row_flow[i]` is the table slot of decoded row i (-1: not part of a flow) and
    `row_dir[i]` is 0 from the initiator, 1 from the responder; `row_new[i]` is 1
    when row i opened its flow (slots are reused, so per-flow state kept by slot
    starts afresh at such a row); `created` counts
    flows this batch opened; `ended` holds the records of flows that ended.
    """

    row_flow: np.ndarray
    row_dir: np.ndarray
    created: int
    ended: FlowRecords
    row_new: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))


@dataclass
class FlowTable:
    """A bounded table of bidirectional flows fed one decoded batch at a time."""

    config: FlowTableConfig = field(default_factory=FlowTableConfig)

    def __post_init__(self) -> None:
        cap = self.config.max_flows
        self._I = np.zeros((cap, K.NI), dtype=np.int64)
        self._F = np.zeros((cap, K.NF), dtype=np.float64)
        self._U = np.zeros((cap, 4), dtype=np.uint64)
        self._H = np.zeros((cap, K.HISTORY_MAX), dtype=np.uint8)
        size = 1
        while size < cap * 2:
            size <<= 1
        self._table = np.zeros(size, dtype=np.int64)
        self._lru_head = np.full(3, -1, dtype=np.int64)
        self._lru_tail = np.full(3, -1, dtype=np.int64)
        self._free = np.arange(cap - 1, -1, -1, dtype=np.int64)
        self._meta = np.zeros(K.N_META, dtype=np.int64)
        self._meta[K.M_FREE_TOP] = cap
        cfg = np.zeros(K.N_CFG, dtype=np.int64)
        c = self.config
        cfg[K.CFG_TCP_TIMEOUT] = int(c.tcp_timeout * NS)
        cfg[K.CFG_UDP_TIMEOUT] = int(c.udp_timeout * NS)
        cfg[K.CFG_OTHER_TIMEOUT] = int(c.other_timeout * NS)
        cfg[K.CFG_ACTIVE_TIMEOUT] = int(c.active_timeout * NS)
        cfg[K.CFG_CLOSE_DELAY] = int(c.tcp_close_delay * NS)
        cfg[K.CFG_ATTEMPT_DELAY] = int(c.tcp_attempt_delay * NS)
        cfg[K.CFG_ACTIVITY_GAP] = int(c.activity_gap * NS)
        cfg[K.CFG_DNS_TIMEOUT] = int(c.dns_timeout * NS)
        self._cfg = cfg
        self._lsp_tcp = np.zeros(65536, dtype=np.uint8)
        self._lsp_tcp[list(LIKELY_SERVER_TCP)] = 1
        self._lsp_udp = np.zeros(65536, dtype=np.uint8)
        self._lsp_udp[list(LIKELY_SERVER_UDP)] = 1
        e = max(16, c.export_buffer)
        self._EI = np.zeros((e, K.NI), dtype=np.int64)
        self._EF = np.zeros((e, K.NF), dtype=np.float64)
        self._EU = np.zeros((e, 4), dtype=np.uint64)
        self._EH = np.zeros((e, K.HISTORY_MAX), dtype=np.uint8)
        self._last_sweep = 0

    def _drain(self, out: list[FlowRecords]) -> None:
        """Turn exported flow rows into records, freeing the reusable export buffers."""
        k = int(self._meta[K.M_EXPORT_N])
        if k:
            out.append(
                FlowRecords.from_state(self._EI[:k], self._EF[:k], self._EU[:k], self._EH[:k])
            )
            self._meta[K.M_EXPORT_N] = 0

    def update(self, decoded: DecodedBatch) -> FlowEvents:
        rows = decoded.rows
        n = rows.shape[0]
        row_flow = np.empty(n, dtype=np.int64)
        row_dir = np.empty(n, dtype=np.int8)
        row_new = np.empty(n, dtype=np.int8)
        created_before = int(self._meta[K.M_CREATED])
        out: list[FlowRecords] = []
        start = 0
        while True:
            start = K.flow_kernel(
                rows,
                start,
                self._I,
                self._F,
                self._U,
                self._H,
                self._table,
                self._lru_head,
                self._lru_tail,
                self._free,
                self._meta,
                self._cfg,
                self._lsp_tcp,
                self._lsp_udp,
                row_flow,
                row_dir,
                row_new,
                self._EI,
                self._EF,
                self._EU,
                self._EH,
            )
            if start >= n:
                break
            self._drain(out)  # the export buffers filled up
        now = int(self._meta[K.M_NOW])
        if now - self._last_sweep >= int(self.config.expire_interval * NS):
            self._sweep(now, out, everything=False)
            self._last_sweep = now
        # one set of records for the batch's ended flows, as a rule: building records
        # costs per call as well as per flow
        self._drain(out)
        return FlowEvents(
            row_flow=row_flow,
            row_dir=row_dir,
            created=int(self._meta[K.M_CREATED]) - created_before,
            ended=FlowRecords.concat(out),
            row_new=row_new,
        )

    def _sweep(self, now: int, out: list[FlowRecords], *, everything: bool) -> None:
        """End idle flows (or all) into the export buffers, draining them as they fill."""
        while True:
            K.expire_kernel(
                self._I,
                self._F,
                self._U,
                self._H,
                self._table,
                self._lru_head,
                self._lru_tail,
                self._free,
                self._meta,
                self._cfg,
                now,
                self._EI,
                self._EF,
                self._EU,
                self._EH,
                everything,
            )
            if self._meta[K.M_EXPORT_N] < self._EI.shape[0]:
                break  # not stopped by full buffers: nothing else is due
            self._drain(out)

    def flush(self) -> FlowRecords:
        """End every tracked flow (end of input) and return their records."""
        out: list[FlowRecords] = []
        self._sweep(int(self._meta[K.M_NOW]), out, everything=True)
        self._drain(out)
        return FlowRecords.concat(out)

    def stats(self) -> FlowTableStats:
        m = self._meta
        return FlowTableStats(
            created=int(m[K.M_CREATED]),
            ended=int(m[K.M_ENDED]),
            evicted=int(m[K.M_EVICTED]),
            active=int(m[K.M_ACTIVE]),
            later_fragments=int(m[K.M_FRAGMENTS]),
        )

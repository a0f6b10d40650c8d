"""The inspector: per-flow reassembly and application parsing that turn packets into sticky buffers for the matcher."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import ClassVar

from engine.inspect.config import InspectConfig, InspectStats, PacketContext
from engine.inspect.detect import DNS_PORTS, UNDECIDED, detect_tcp, detect_udp
from engine.inspect.dns import (
    RECORD_TYPES,
    DnsTcpStream,
    is_query,
    pack_types,
    question_name,
    record_types,
)
from engine.inspect.ftp import FtpClient
from engine.inspect.http import HttpSession
from engine.inspect.http2 import Http2Session
from engine.inspect.smtp import SmtpClient
from engine.inspect.stream import TH_FIN, TH_SYN, StreamDirection
from engine.inspect.tls import TLS_NAMES, TlsDirection

_TCP = 6
_UDP = 17
_SSH_LINE_MAX = 255
_MAX_PENDING_SYNS = 1 << 16  # SYN sequence numbers kept for flows with no data yet
# What a flow's state costs beyond the bytes it buffers (objects, slots), counted
# against memcap so that many small flows are bounded as well as a few big ones.
_FLOW_COST = 640


class _Ssh:
    __slots__ = ("done", "line")

    def __init__(self) -> None:
        self.line = [bytearray(), bytearray()]
        self.done = [False, False]

    @property
    def held(self) -> int:
        return len(self.line[0]) + len(self.line[1])


class _Flow:
    __slots__ = ("app", "client", "held", "parse", "seen", "state", "streams", "verdict")

    def __init__(self) -> None:
        self.app: str | None = None
        self.client = 0  # which direction (0: to_server) the content shows to be the client's
        self.parse = True  # still detecting or parsing the application layer
        self.verdict: list[str | None] = [UNDECIDED, UNDECIDED]  # detection per direction
        self.seen = 0  # payload bytes looked at for detection
        self.streams: list[StreamDirection | None] = [None, None]  # made on first data
        self.state: object = None  # the application parser
        self.held = 0

    def buffered(self) -> int:
        total = 0
        for sd in self.streams:
            if sd is not None:
                total += sd.held
        state = self.state
        if state is not None:
            if isinstance(state, tuple):
                total += state[0].held + state[1].held
            else:
                total += state.held  # type: ignore[attr-defined]
        return total

    def release(self) -> None:
        for sd in self.streams:
            if sd is not None:
                sd.release()
        self.state = None
        self.parse = False


class Inspector:
    """Inspection of the packets of many flows, bounded by `InspectConfig`."""

    #: The UDP ports whose payloads it parses; of other UDP flows it keeps nothing, so a
    #: caller may instead call `end_flow` on their first packet (a reused slot's state).
    udp_ports: ClassVar[frozenset[int]] = DNS_PORTS

    def __init__(self, config: InspectConfig | None = None) -> None:
        self.config = config or InspectConfig()
        self._stats = InspectStats()
        self._flows: OrderedDict[int, _Flow] = OrderedDict()
        self._held = 0
        self._isn: dict[int, int] = {}  # (flow << 1 | direction) -> SYN sequence, before data
        self._tls = True  # parse TLS handshakes (see `reads`)

    def reads(self, names: frozenset[str]) -> None:
        """Be told the buffers and fields the loaded rules read. TLS handshakes are
        parsed only when one of them is a TLS or JA3 name (`tls.*`, `ja3.*`, `ja3s.*`):
        certificates and fingerprints cost more than the rest of a handshake's
        inspection, and without such a rule nothing reads them. After a reload that
        brings the first such rule, a TLS flow whose handshake went by unparsed has no
        TLS buffers, as one whose handshake preceded the capture."""
        self._tls = any(name.startswith(TLS_NAMES) for name in names)

    def packet(
        self,
        flow: int,
        new_flow: bool,
        to_server: bool,
        proto: int,
        sport: int,
        dport: int,
        tcp_flags: int,
        tcp_seq: int,
        payload: bytes | memoryview,
        ts_ns: int,
    ) -> PacketContext:
        """Inspect one packet of `flow` (sent by the client when `to_server`)."""
        st = self._stats
        st.packets += 1
        if proto == _TCP:
            return self._tcp(flow, new_flow, to_server, sport, dport, tcp_flags, tcp_seq, payload)
        if proto == _UDP and (sport in DNS_PORTS or dport in DNS_PORTS):
            return self._udp_dns(flow, new_flow, to_server, sport, dport, payload)
        if new_flow and flow in self._flows:
            self.end_flow(flow)
        return PacketContext(None, to_server, {})

    def end_flow(self, flow: int) -> None:
        """Forget `flow` and free what it held."""
        fs = self._flows.pop(flow, None)
        if fs is not None:
            self._held -= fs.held
        isn = self._isn
        if isn:
            isn.pop(flow << 1, None)
            isn.pop(flow << 1 | 1, None)

    def flush(self, flow: int) -> list[PacketContext]:
        """Buffers `flow` still holds back, as if its connection closed now: a body's
        last section, a head cut short. Call before `end_flow` when a flow ends, so
        that rules see the end of what it carried. At most one context per direction."""
        fs = self._flows.get(flow)
        out: list[PacketContext] = []
        if fs is None or not fs.parse or not isinstance(fs.state, HttpSession):
            return out
        session = fs.state
        for side, to_server in (
            (session.request, fs.client == 0),
            (session.response, fs.client != 0),
        ):
            try:
                results = side.finish(self.config, self._stats)
            except Exception:  # malformed application data: count it, give the flow up
                self._stats.parse_errors += 1
                fs.parse = False
                fs.state = None
                break
            if results:
                out.append(PacketContext(fs.app, to_server, results[0], more=tuple(results[1:])))
        return out

    def undetected(self, flow: int) -> bool:
        """Whether detection gave `flow` up without finding its application protocol:
        its later packets yield nothing but reassembled bytes."""
        fs = self._flows.get(flow)
        return fs is not None and fs.app is None and not fs.parse

    def flows(self) -> list[int]:
        """The flows that have state, least recently active first."""
        return list(self._flows)

    def stats(self) -> InspectStats:
        st = self._stats
        st.held_bytes = self._held
        st.flows = len(self._flows)
        return dataclasses.replace(st)

    def _state(self, flow: int, new_flow: bool) -> _Flow:
        flows = self._flows
        fs = flows.get(flow)
        if fs is None or new_flow:
            if fs is not None:
                self._held -= fs.held
            fs = _Flow()
            flows[flow] = fs
        flows.move_to_end(flow)
        return fs

    def _udp_dns(
        self,
        flow: int,
        new_flow: bool,
        to_server: bool,
        sport: int,
        dport: int,
        payload: bytes | memoryview,
    ) -> PacketContext:
        fs = self._state(flow, new_flow)
        buffers: dict[str, bytes] = {}
        if fs.parse and payload:
            data = bytes(payload)
            if fs.app is None:
                fs.app = detect_udp(data, sport, dport)
                if fs.app is None:
                    fs.parse = False
            if fs.app == "dns":
                try:
                    if is_query(data):
                        buffers["dns.query"] = question_name(data)
                        self._stats.dns_queries += 1
                    buffers[RECORD_TYPES] = pack_types(record_types(data))
                except ValueError:
                    self._stats.parse_errors += 1
        self._account(flow, fs)
        return PacketContext(fs.app, to_server, buffers)

    def _tcp(
        self,
        flow: int,
        new_flow: bool,
        to_server: bool,
        sport: int,
        dport: int,
        flags: int,
        seq: int,
        payload: bytes | memoryview,
    ) -> PacketContext:
        cfg = self.config
        st = self._stats
        flows = self._flows
        if new_flow:
            self.end_flow(flow)
        d = 0 if to_server else 1
        if not payload:
            # Bare SYN, ACK, FIN, RST: remember a SYN's sequence number; a FIN may end
            # a body delimited by the close. Nothing else to do, no state to make.
            fs = flows.get(flow)
            sd = None if fs is None else fs.streams[d]
            if flags & TH_SYN:
                if sd is None:
                    pending = self._isn
                    pending[flow << 1 | d] = seq
                    if len(pending) > _MAX_PENDING_SYNS:
                        del pending[next(iter(pending))]
                else:
                    sd.segment(seq, flags, b"", cfg, st)
            if fs is None:
                return PacketContext(None, to_server, {})
            if not (flags & TH_FIN and fs.parse and fs.app is not None and sd is not None):
                return PacketContext(fs.app, to_server, {})
            closing = self._run_app(fs, sd, b"", d, True, sport, dport)
            self._account(flow, fs)
            return PacketContext(
                fs.app, to_server, closing[0] if closing else {}, more=tuple(closing[1:])
            )
        fs = flows.get(flow)
        if fs is None:
            fs = flows[flow] = _Flow()
        else:
            flows.move_to_end(flow)
        sd = fs.streams[d]
        if sd is None:
            sd = fs.streams[d] = StreamDirection()
            isn = self._isn.pop(flow << 1 | d, None)
            if isn is not None:
                sd.segment(isn, TH_SYN, b"", cfg, st)
        data = payload if isinstance(payload, bytes) else bytes(payload)
        st.segments += 1
        new = sd.segment(seq, flags, data, cfg, st)
        if fs.app is not None and new and fs.verdict[d] == UNDECIDED:
            # the flow's protocol is known from the other side: what does this side speak?
            whole = sd.delivered == len(sd.window)
            head = bytes(sd.window[:64]) if whole else new[:64]
            found = detect_tcp(head, d == fs.client, sport, dport)
            if found == UNDECIDED and (not whole or len(head) >= 64):
                found = None  # no more bytes will tell
            fs.verdict[d] = found
        if sd.gapped and fs.parse and fs.app is not None:
            fs.parse = False  # a parser cannot resynchronise after lost bytes
            fs.state = None
        results: list[dict[str, bytes]] = []
        fin = bool(flags & TH_FIN)
        if fs.parse and (new or fin):
            results = self._run_app(fs, sd, new, d, fin, sport, dport)
        window = sd.window
        if window:
            stream_new = min(len(new), len(window))
            keep = min(len(window), stream_new + cfg.stream_context)
            stream: bytes | None = bytes(window[-keep:])
            offset = sd.delivered - keep
        else:
            stream, stream_new, offset = None, 0, sd.delivered
        self._account(flow, fs)
        client = fs.client
        return PacketContext(
            fs.app,
            to_server,
            results[0] if results else {},
            stream,
            stream_new,
            offset,
            tuple(results[1:]),
            (fs.verdict[client] or None, fs.verdict[1 - client] or None),
        )

    def _run_app(
        self, fs: _Flow, sd: StreamDirection, new: bytes, d: int, fin: bool, sport: int, dport: int
    ) -> list[dict[str, bytes]]:
        try:
            return self._app_tcp(fs, sd, new, d, fin, sport, dport)
        except Exception:  # any malformed application data: count it, give the flow up
            self._stats.parse_errors += 1
            fs.parse = False
            fs.state = None
            return []

    def _account(self, flow: int, fs: _Flow) -> None:
        held = fs.buffered() + _FLOW_COST
        if held != fs.held:
            self._held += held - fs.held
            fs.held = held
            if self._held > self.config.memcap:
                self._prune(flow)

    def _app_tcp(
        self,
        fs: _Flow,
        sd: StreamDirection,
        new: bytes,
        d: int,
        fin: bool,
        sport: int,
        dport: int,
    ) -> list[dict[str, bytes]]:
        cfg = self.config
        st = self._stats
        if fs.app is None:
            if not new:
                return []
            # detect on the direction's first bytes (held in the window while it starts at 0)
            whole = sd.delivered == len(sd.window)
            head = bytes(sd.window[:64]) if whole else new[:64]
            verdict = detect_tcp(head, d == 0, sport, dport)
            if verdict is None:
                # the flow's roles may have been guessed wrong (mid-stream pickup)
                verdict = detect_tcp(head, d != 0, sport, dport)
                if verdict:
                    fs.client = 1 - d if d == 0 else d
            elif verdict:
                fs.client = 0
            fs.verdict[d] = verdict
            fs.seen += len(new)
            if not verdict:
                other = fs.verdict[1 - d]
                if (verdict is None and other is None) or fs.seen > cfg.detect_bytes or not whole:
                    fs.parse = False
                return []
            fs.app = verdict
            if verdict == "http":
                fs.state = HttpSession()
            elif verdict == "tls":
                if not self._tls:
                    fs.parse = False
                    return []
                tls_state = (TlsDirection(True), TlsDirection(False))
                fs.state = tls_state if fs.client == 0 else tls_state[::-1]
            elif verdict == "dns":
                fs.state = (DnsTcpStream(), DnsTcpStream())
            elif verdict == "ssh":
                fs.state = _Ssh()
            elif verdict == "smtp":
                fs.state = SmtpClient()
            elif verdict == "ftp":
                fs.state = FtpClient()
            elif verdict == "http2":
                fs.state = Http2Session(fs.client)
            else:
                fs.parse = False
                return []
            new = bytes(sd.window)  # the whole direction so far
        state = fs.state
        client_side = d == fs.client
        if isinstance(state, HttpSession):
            side = state.request if client_side else state.response
            results = side.feed(new, fin, cfg, st)
            if state.tunnel:
                fs.parse = False
                fs.state = None
            return results
        if isinstance(state, tuple):
            if isinstance(state[0], TlsDirection):
                found = state[d].feed(new, cfg, st)
                if state[0].done and state[1].done:
                    fs.parse = False
                    fs.state = None
                return found
            out: list[dict[str, bytes]] = []
            for msg in state[d].feed(new):
                found_dns: dict[str, bytes] = {}
                if client_side and is_query(msg):
                    st.dns_queries += 1
                    found_dns["dns.query"] = question_name(msg)
                try:
                    found_dns[RECORD_TYPES] = pack_types(record_types(msg))
                except ValueError:
                    st.parse_errors += 1
                if found_dns:
                    out.append(found_dns)
            return out
        if isinstance(state, Http2Session):
            found = state.directions[d].feed(new, cfg, st)
            if state.doh:
                fs.app = "doh2"  # HTTP/2 carrying DNS messages, as Suricata names it
            return found
        if isinstance(state, _Ssh):
            return self._ssh(fs, state, new, d)
        if isinstance(state, SmtpClient):
            if not client_side:
                return []
            found = state.feed(new)
            if state.done:
                fs.parse = False
                fs.state = None
            return found
        if isinstance(state, FtpClient):
            return state.feed(new) if client_side else []
        return []

    def _ssh(self, fs: _Flow, ssh: _Ssh, new: bytes, d: int) -> list[dict[str, bytes]]:
        if ssh.done[d]:
            return []
        line = ssh.line[d]
        line += new
        nl = line.find(b"\n")
        if nl < 0:
            if len(line) > _SSH_LINE_MAX:
                raise ValueError("SSH identification line too long")
            return []
        ident = bytes(line[:nl]).rstrip(b"\r")
        ssh.done[d] = True
        ssh.line[d] = bytearray()
        if ssh.done[0] and ssh.done[1]:
            fs.parse = False
            fs.state = None
        if not ident.startswith(b"SSH-"):
            raise ValueError("SSH identification line without SSH-")
        proto, _, software = ident[4:].partition(b"-")
        return [{"ssh.proto": proto, "ssh.software": software.split(b" ", 1)[0]}]

    def _prune(self, keep: int) -> None:
        """Release buffers of the least recently active flows until under memcap; a
        flow with nothing left to release is forgotten altogether."""
        cap = self.config.memcap
        forget: list[int] = []
        for flow, fs in self._flows.items():
            if self._held <= cap:
                break
            if flow == keep:
                continue
            self._stats.memcap_prunes += 1
            if fs.held > _FLOW_COST:
                fs.release()
                self._held -= fs.held - _FLOW_COST
                fs.held = _FLOW_COST
            else:
                forget.append(flow)
                self._held -= fs.held
                fs.held = 0
        for flow in forget:
            self.end_flow(flow)

"""The DPDK capture source: `DpdkConfig` (config/dpdk.yaml) and `DpdkSource`, which reads one port.

Packets arrive through the C shim in `dpdk_shim.c`: one shim call fills one
`PacketBatch` (the shim loops `rte_eth_rx_burst`, copies each packet into the
batch buffer and frees the mbuf), so Python work is per batch, not per packet.

EAL can be initialised once per process. The first `DpdkSource` starts it with
its settings; later sources in the same process must use the same EAL settings
and a port not used before, otherwise they fail with a message saying so.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from dpdk_io.batch import LinkType, PacketBatch, SourceStats, empty_batch
from dpdk_io.errors import CaptureError, SourceUnavailableError

log = logging.getLogger(__name__)

# Shipped defaults run anywhere (no hugepages, no PCI); a NIC deployment
# replaces them in config/dpdk.yaml.
DEFAULT_EAL_ARGS: tuple[str, ...] = (
    "--no-huge",
    "-m",
    "512",
    "--no-pci",
    "--no-shconf",
    "--no-telemetry",
    "--log-level=*:warning",
)
PCAP_VDEV_NAME = "net_pcap_shrike_replay"
TIMESTAMP_MODES = ("auto", "host")
# Drivers whose rx timestamp dynfield holds microseconds since the epoch
# (net_pcap copies each record's pcap header time, tv_sec * 1e6 + tv_usec).
EPOCH_MICROSECOND_DRIVERS = frozenset({"net_pcap"})
MAX_BURST = 1024
MIN_BATCH_BYTES = 256 * 1024  # larger than any frame a DPDK port or pcap record carries
_OPEN_STEPS = {
    1: "rte_eth_dev_is_valid_port (no such port)",
    2: "rte_eth_dev_info_get",
    3: "rx queue count check",
    4: "rte_pktmbuf_pool_create",
    5: "rte_eth_dev_configure",
    6: "rte_eth_dev_adjust_nb_rx_tx_desc",
    7: "rte_eth_rx_queue_setup",
    8: "rte_eth_dev_start",
}


class DpdkConfigError(SourceUnavailableError, ValueError):
    """A DPDK setting is missing, mistyped or out of range; names the file and key."""

    def __init__(self, origin: str, key: str, message: str) -> None:
        self.origin = origin
        self.key = key
        self.reason = message
        super().__init__(f"{origin}: {key}: {message}")


@dataclass(frozen=True, slots=True)
class DpdkConfig:
    """Validated DPDK settings; see the `## DPDK` section of docs/capture.md for each key."""

    eal_args: tuple[str, ...] = DEFAULT_EAL_ARGS
    vdevs: tuple[str, ...] = ()
    port_id: int = 0
    port_name: str | None = None
    rx_queues: int = 1
    rx_ring_size: int = 1024
    nb_mbufs: int = 8191
    cache_size: int = 256
    burst_size: int = 64
    batch_packets: int = 8192
    batch_bytes: int = 8 * 1024 * 1024
    idle_polls: int = 256
    stop_when_idle: bool = False
    timestamps: str = "auto"
    origin: str = field(default="<defaults>", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str) -> DpdkConfig:
        """Build from parsed YAML; unknown keys are errors so typos do not go unnoticed."""
        known = {f.name for f in fields(cls)} - {"origin"}
        for key in data:
            if key not in known:
                raise DpdkConfigError(
                    origin, str(key), f"unknown setting (known: {', '.join(sorted(known))})"
                )
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key in ("eal_args", "vdevs"):
                if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
                    raise DpdkConfigError(origin, key, f"must be a list of strings, got {raw!r}")
                values[key] = tuple(raw)
            else:
                values[key] = raw
        try:
            return cls(**values, origin=origin)
        except DpdkConfigError as exc:
            raise DpdkConfigError(origin, exc.key, exc.reason) from None

    def with_pcap(self, pcap: str | os.PathLike[str]) -> DpdkConfig:
        """These settings plus a net_pcap vdev replaying `pcap`, selected as the port."""
        path = Path(pcap).resolve()
        check_ethernet_capture(path)
        if "," in str(path) or "=" in str(path):
            raise DpdkConfigError(
                str(pcap),
                "pcap",
                "DPDK device arguments cannot carry ',' or '=' in a path; rename the file",
            )
        return replace(
            self,
            vdevs=(*self.vdevs, f"{PCAP_VDEV_NAME},rx_pcap={path}"),
            port_name=PCAP_VDEV_NAME,
            stop_when_idle=True,
        )

    def eal_argv(self) -> list[str]:
        """The argv given to rte_eal_init, with the automatic additions documented in capture.md."""
        argv = ["shrike", *self.eal_args]
        if not any(a.startswith(("-l", "-c", "--lcores")) for a in self.eal_args):
            # Without a core list EAL starts an idle worker thread per CPU.
            argv += ["-l", str(min(os.sched_getaffinity(0)))]
        if not any(a.startswith("--file-prefix") for a in self.eal_args):
            # A per-process prefix keeps parallel Shrike processes from clashing.
            argv.append(f"--file-prefix=shrike-{os.getpid()}")
        argv += [f"--vdev={v}" for v in self.vdevs]
        return argv


def _validate(config: DpdkConfig) -> None:
    def integer(key: str, low: int, high: int) -> int:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DpdkConfigError(config.origin, key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise DpdkConfigError(
                config.origin, key, f"must be between {low} and {high}, got {value}"
            )
        return value

    integer("port_id", 0, 65535)
    rx_queues = integer("rx_queues", 1, 1024)
    rx_ring_size = integer("rx_ring_size", 1, 65535)
    cache_size = integer("cache_size", 0, 512)
    burst_size = integer("burst_size", 1, MAX_BURST)
    nb_mbufs = integer("nb_mbufs", 1, 2**31 - 1)
    integer("batch_packets", 1, 2**24)
    integer("batch_bytes", MIN_BATCH_BYTES, 2**31 - 1)
    integer("idle_polls", 1, 2**31 - 1)
    if nb_mbufs < rx_queues * rx_ring_size + burst_size + cache_size:
        raise DpdkConfigError(
            config.origin,
            "nb_mbufs",
            f"{nb_mbufs} is too few: the rx rings hold rx_queues * rx_ring_size = "
            f"{rx_queues * rx_ring_size}, plus burst_size {burst_size} and cache_size {cache_size}",
        )
    if cache_size * 3 > nb_mbufs * 2:
        raise DpdkConfigError(
            config.origin,
            "cache_size",
            f"DPDK needs cache_size <= nb_mbufs / 1.5, got {cache_size}",
        )
    if not isinstance(config.stop_when_idle, bool):
        raise DpdkConfigError(
            config.origin, "stop_when_idle", f"must be true or false, got {config.stop_when_idle!r}"
        )
    if config.timestamps not in TIMESTAMP_MODES:
        raise DpdkConfigError(
            config.origin,
            "timestamps",
            f"must be one of {', '.join(TIMESTAMP_MODES)}, got {config.timestamps!r}",
        )
    if config.port_name is not None and (
        not isinstance(config.port_name, str) or not config.port_name
    ):
        raise DpdkConfigError(
            config.origin,
            "port_name",
            f"must be a device name such as net_pcap0, got {config.port_name!r}",
        )
    for key in ("eal_args", "vdevs"):
        value = getattr(config, key)
        if not isinstance(value, tuple) or not all(isinstance(a, str) and a for a in value):
            raise DpdkConfigError(
                config.origin, key, f"must be a list of non-empty strings, got {value!r}"
            )
    for arg in config.eal_args:
        if arg.startswith("--vdev"):
            raise DpdkConfigError(
                config.origin, "eal_args", f"put virtual devices under `vdevs`, not {arg!r}"
            )


def load_dpdk_config(path: str | os.PathLike[str]) -> DpdkConfig:
    """Read and validate a dpdk.yaml; every error names the file and the key."""
    import yaml

    origin = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DpdkConfigError(origin, "<file>", f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark is not None else origin
        raise DpdkConfigError(
            where, "<yaml>", f"invalid YAML: {getattr(exc, 'problem', exc)}"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DpdkConfigError(origin, "<top level>", "must be a mapping of settings")
    return DpdkConfig.from_mapping(data, origin)


def check_ethernet_capture(path: Path) -> None:
    """net_pcap hands frames over as Ethernet whatever the file says, so refuse other link types."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise DpdkConfigError(
            str(path), "pcap", f"cannot read capture: {exc.strerror or exc}"
        ) from exc
    linktype: int | None = None
    if len(head) >= 24 and head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        linktype = struct.unpack_from("<I", head, 20)[0] & 0x0FFFFFFF
    elif len(head) >= 24 and head[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        linktype = struct.unpack_from(">I", head, 20)[0] & 0x0FFFFFFF
    elif head[:4] == b"\x0a\x0d\x0d\x0a" and len(head) >= 12:
        order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        shb_len = struct.unpack_from(order + "I", head, 4)[0]
        if len(head) >= shb_len + 10 and struct.unpack_from(order + "I", head, shb_len)[0] == 1:
            linktype = struct.unpack_from(order + "H", head, shb_len + 8)[0]
    else:
        raise DpdkConfigError(str(path), "pcap", "not a pcap or pcapng file")
    if linktype is not None and linktype != LinkType.ETHERNET:
        raise DpdkConfigError(
            str(path),
            "pcap",
            f"link type {linktype} is not Ethernet; the DPDK source replays only Ethernet captures "
            f"(read this file with the pcap source)",
        )


@dataclass(slots=True)
class _EalRecord:
    """What this process did with EAL (a per-process singleton, hence this one module-level record)."""

    argv: tuple[str, ...] | None = None
    failure: str | None = None
    log_text: str = ""
    used_ports: set[int | str] = field(default_factory=set)


_EAL = _EalRecord()


@contextlib.contextmanager
def _native_output_captured() -> Iterator[list[str]]:
    """Collect what C code writes to fds 1 and 2 (EAL logs, usage text) instead of letting it out."""
    out: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield out
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))


def _tail(text: str, lines: int = 12) -> str:
    """The informative end of EAL's output: its usage text and start-up chatter are left out."""
    kept: list[str] = []
    in_usage = False
    for line in text.splitlines():
        stripped = line.strip()
        if line.startswith("Usage:"):
            in_usage = True
            continue
        if in_usage and (not stripped or line[0].isspace() or stripped.endswith(":")):
            continue
        in_usage = False
        if not stripped or stripped.startswith("EAL: Detected") or stripped in kept:
            continue
        kept.append(stripped)
    if not kept:
        return "    (EAL printed nothing)"
    return "\n".join("    " + line for line in kept[-lines:])


def _start_eal(shim: ModuleType, config: DpdkConfig) -> None:
    ffi, lib = shim.ffi, shim.lib
    argv = config.eal_argv()
    # The automatic per-process parts (file prefix, core) do not count as a difference.
    wanted = tuple(argv)
    if _EAL.failure is not None:
        raise SourceUnavailableError(
            f"DPDK EAL already failed to start in this process and cannot be retried: {_EAL.failure}"
        )
    if _EAL.argv is not None:
        if _EAL.argv != wanted:
            raise SourceUnavailableError(
                f"DPDK EAL can be initialised only once per process; it is running with "
                f"{list(_EAL.argv[1:])} but {config.origin} asks for {argv[1:]}; "
                f"use the same eal_args and vdevs, or open this source in a new process"
            )
        return
    keep = [ffi.new("char[]", a.encode()) for a in argv]
    c_argv = ffi.new("char *[]", keep)
    # EAL pins the calling thread to its main lcore; Shrike's other threads inherit
    # the caller's affinity, so it is put back afterwards.
    affinity = os.sched_getaffinity(0)
    with _native_output_captured() as captured:
        rc = lib.shrike_eal_init(len(keep), c_argv)
    os.sched_setaffinity(0, affinity)
    _EAL.log_text = captured[0]
    if rc < 0:
        reason = ffi.string(lib.shrike_strerror(rc)).decode()
        _EAL.failure = f"rte_eal_init({argv[1:]}) failed: {reason}"
        raise SourceUnavailableError(
            f"DPDK EAL failed to start ({reason}) with arguments {argv[1:]}; "
            f"fix `eal_args`/`vdevs` in {config.origin}. EAL said:\n{_tail(_EAL.log_text)}"
        )
    _EAL.argv = wanted
    # With --no-shconf EAL leaves an empty runtime directory per process behind.
    runtime_dir = ffi.string(lib.shrike_runtime_dir()).decode()
    with contextlib.suppress(OSError):
        if runtime_dir and not os.listdir(runtime_dir):
            os.rmdir(runtime_dir)
    if _EAL.log_text.strip():
        log.debug("EAL start-up output:\n%s", _EAL.log_text)


class DpdkSource:
    """Reads one DPDK port through the shim; see docs/capture.md `## DPDK`."""

    def __init__(
        self,
        config: DpdkConfig,
        *,
        pkg_name: str | None = None,
        cache_root: Path | None = None,
    ) -> None:
        from dpdk_io.dpdk_build import load_shim

        self.config = config
        self._shim = load_shim(pkg_name=pkg_name, cache_root=cache_root)
        self._ffi = self._shim.ffi
        self._lib = self._shim.lib
        self._stats = SourceStats()
        self._exhausted = False
        self._closed = False
        self._port = self._ffi.new("struct shrike_port *")
        self._request = self._ffi.new("struct shrike_rx_request *")
        self._result = self._ffi.new("struct shrike_rx_result *")
        self._port_stats = self._ffi.new("struct shrike_port_stats *")
        self._final_port_stats: dict[str, int] = {}
        _start_eal(self._shim, config)
        self.port_id = self._resolve_port()
        self._open_port()

    @classmethod
    def from_config(
        cls,
        path_or_config: str | os.PathLike[str] | DpdkConfig | None = None,
        *,
        pcap: str | os.PathLike[str] | None = None,
        pkg_name: str | None = None,
    ) -> DpdkSource:
        """Open from a dpdk.yaml path, a `DpdkConfig`, or the defaults; `pcap` replays a file via net_pcap."""
        if path_or_config is None:
            config = DpdkConfig()
        elif isinstance(path_or_config, DpdkConfig):
            config = path_or_config
        else:
            config = load_dpdk_config(path_or_config)
        if pcap is not None:
            config = config.with_pcap(pcap)
        return cls(config, pkg_name=pkg_name)

    def _resolve_port(self) -> int:
        config = self.config
        used_key = config.port_name if config.port_name is not None else config.port_id
        if used_key in _EAL.used_ports:
            raise SourceUnavailableError(
                f"DPDK port {used_key!r} was already opened in this process; DPDK ports cannot be "
                f"reopened after close, open this source in a new process"
            )
        if config.port_name is None:
            return config.port_id
        port = self._lib.shrike_port_by_name(config.port_name.encode())
        if port < 0:
            raise SourceUnavailableError(
                f"DPDK port {config.port_name!r} ({config.origin}: port_name) does not exist; "
                f"EAL found {self._lib.shrike_port_count()} port(s). EAL said:\n{_tail(_EAL.log_text)}"
            )
        return int(port)

    def _open_port(self) -> None:
        config = self.config
        with _native_output_captured() as captured:
            rc = self._lib.shrike_port_open(
                self._port,
                self.port_id,
                config.rx_queues,
                config.rx_ring_size,
                config.nb_mbufs,
                config.cache_size,
            )
        if rc != 0:
            step = _OPEN_STEPS.get(self._port.failed_step, "unknown step")
            reason = self._ffi.string(self._lib.shrike_strerror(rc)).decode()
            hint = ""
            said = captured[0]
            if self._port.failed_step == 1:
                hint = (
                    f"; EAL found {self._lib.shrike_port_count()} port(s): bind a NIC to a DPDK "
                    f"driver or add a vdev"
                )
                said = _EAL.log_text + said
            elif self._port.failed_step == 3:
                hint = f"; the port has {self._port.max_rx_queues} rx queue(s), lower rx_queues"
            elif self._port.failed_step == 4:
                hint = "; lower nb_mbufs or give EAL more memory (-m in eal_args)"
            raise SourceUnavailableError(
                f"DPDK port {self.port_id}: {step} failed ({reason}){hint}; check {config.origin}. "
                f"DPDK said:\n{_tail(said)}"
            )
        _EAL.used_ports.update((self.port_id, config.port_name or self.port_id))
        self.driver_name = self._ffi.string(self._port.driver_name).decode()
        epoch_micro = (
            self.driver_name in EPOCH_MICROSECOND_DRIVERS
            and self._lib.shrike_port_has_rx_timestamps(self._port)
        )
        # Other drivers' timestamps count device clock ticks, not wall time: use the host clock there.
        self.uses_driver_timestamps = bool(config.timestamps == "auto" and epoch_micro)
        self._lib.shrike_port_use_timestamps(self._port, 1000 if self.uses_driver_timestamps else 0)
        req = self._request
        req.max_packets = config.batch_packets
        req.burst_size = config.burst_size
        req.idle_polls = config.idle_polls

    def next_batch(self) -> PacketBatch | None:
        """The next batch; an empty one when a live port stayed idle, None once a replay is done."""
        if self._closed or self._exhausted:
            return None
        config = self.config
        ffi = self._ffi
        data = np.empty(config.batch_bytes, dtype=np.uint8)
        offsets = np.empty(config.batch_packets, dtype=np.int64)
        caplens = np.empty(config.batch_packets, dtype=np.int32)
        timestamps = np.empty(config.batch_packets, dtype=np.int64)
        req = self._request
        req.data = ffi.from_buffer("uint8_t[]", data)
        req.data_capacity = config.batch_bytes
        req.offsets = ffi.from_buffer("int64_t[]", offsets)
        req.lengths = ffi.from_buffer("int32_t[]", caplens)
        req.timestamps_ns = ffi.from_buffer("int64_t[]", timestamps)
        rc = self._lib.shrike_rx_batch(self._port, req, self._result)
        if rc != 0:
            reason = ffi.string(self._lib.shrike_strerror(rc)).decode()
            if rc == -errno.E2BIG:
                reason = f"a packet is larger than batch_bytes={config.batch_bytes}; raise batch_bytes in {config.origin}"
            raise CaptureError(
                f"DPDK port {self.port_id}: receive failed at packet {self._stats.packets}: {reason}"
            )
        res = self._result
        count = int(res.packets)
        first_index = self._stats.packets
        if count == 0:
            if config.stop_when_idle:
                self._exhausted = True
                return None
            return empty_batch(LinkType.ETHERNET, first_index)
        self._stats.packets += count
        self._stats.bytes += int(res.bytes)
        self._stats.batches += 1
        if res.host_timestamps:
            self._stats.extra["host_timestamps"] = self._stats.extra.get(
                "host_timestamps", 0
            ) + int(res.host_timestamps)
        caplens = caplens[:count]
        # DPDK reports the frame length it received; net_pcap does not pass on a
        # pcap record's original length, so wire length equals captured length.
        return PacketBatch(
            data=data[: int(res.bytes)],
            offsets=offsets[:count],
            caplens=caplens,
            wirelens=caplens.copy(),
            timestamps=timestamps[:count],
            linktype=LinkType.ETHERNET,
            first_index=first_index,
        )

    def _read_port_stats(self) -> dict[str, int]:
        rc = self._lib.shrike_port_stats(self._port, self._port_stats)
        if rc != 0:
            reason = self._ffi.string(self._lib.shrike_strerror(rc)).decode()
            raise CaptureError(f"DPDK port {self.port_id}: rte_eth_stats_get failed: {reason}")
        ps = self._port_stats
        return {
            "port_ipackets": int(ps.ipackets),
            "port_ibytes": int(ps.ibytes),
            "imissed": int(ps.imissed),
            "ierrors": int(ps.ierrors),
            "rx_nombuf": int(ps.rx_nombuf),
        }

    def stats(self) -> SourceStats:
        port = self._final_port_stats if self._closed else self._read_port_stats()
        extra = {"host_timestamps": 0, **self._stats.extra, **port}
        return SourceStats(
            packets=self._stats.packets,
            bytes=self._stats.bytes,
            batches=self._stats.batches,
            dropped=port.get("imissed", 0) + port.get("rx_nombuf", 0),
            extra=extra,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._final_port_stats = self._read_port_stats()
        self._closed = True
        rc = self._lib.shrike_port_close(self._port)
        if rc != 0:
            reason = self._ffi.string(self._lib.shrike_strerror(rc)).decode()
            raise CaptureError(f"DPDK port {self.port_id}: stopping the port failed: {reason}")

    def __enter__(self) -> DpdkSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

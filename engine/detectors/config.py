"""Detector settings: one validated dataclass per detector, loaded from `config/detectors.yaml`."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.events import SEVERITIES

DEFAULT_DETECTORS_CONFIG = (
    Path(__file__).resolve().parent.parent.parent / "config" / "detectors.yaml"
)

RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
LOGIN_PORTS = (21, 22, 23, 25, 110, 143, 389, 445, 465, 587, 993, 995, 1433, 3306, 3389, 5432, 5900, 5985, 5986)  # fmt: skip
AMPLIFIER_PORTS = (17, 19, 53, 69, 111, 123, 137, 161, 389, 500, 520, 1434, 1900, 3283, 3702, 4500, 5353, 5683, 10001, 11211, 27015)  # fmt: skip


_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class DetectorConfigError(ValueError):
    """A detector setting that cannot be used, naming the file and the setting."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class Common:
    enabled: bool = True
    window: float = 60.0
    severity: str = "medium"
    allow: tuple[str, ...] = ()  # sources never reported (known scanners, monitoring hosts)
    max_keys: int = 65_536

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ValueError("window must be positive")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        if self.max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        for entry in self.allow:
            if not _MAC.match(entry):
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"allow: {entry!r} is not an address, network or MAC address"
                    ) from None


@dataclass(frozen=True, slots=True)
class PortScanConfig(Common):
    min_ports: int = 15  # distinct ports of failed attempts from one source to one host
    min_half_open: int = 3  # handshakes the source itself aborted with a RST
    min_unreachable: int = 30  # ICMP unreachable replies a host receives from one target


@dataclass(frozen=True, slots=True)
class HostSweepConfig(Common):
    min_hosts: int = 15  # distinct hosts probed on one port (or by ICMP echo)


@dataclass(frozen=True, slots=True)
class FloodConfig(Common):
    window: float = 10.0
    severity: str = "high"
    min_packets: int = 5000  # packets of the flood's kind to one destination in the window
    min_single_source: int = 2500  # from one source to one destination (count-min estimate)
    sketch_width: int = 4096
    sketch_depth: int = 4


@dataclass(frozen=True, slots=True)
class ReflectionConfig(Common):
    window: float = 300.0
    severity: str = "high"
    min_reflectors: int = 20  # distinct hosts sending unsolicited responses to one victim
    min_responses: int = 200  # or this many unsolicited response packets, from any number
    udp_ports: tuple[int, ...] = AMPLIFIER_PORTS


@dataclass(frozen=True, slots=True)
class FanInConfig(Common):
    window: float = 300.0
    severity: str = "high"
    min_sources: int = 40  # distinct sources of unanswered attempts at one destination


@dataclass(frozen=True, slots=True)
class BruteForceConfig(Common):
    severity: str = "high"
    min_attempts: int = 10  # connections from one source to one login service
    ports: tuple[int, ...] = LOGIN_PORTS
    detect_ssh_banner: bool = True  # also treat any server that speaks SSH as a login service


@dataclass(frozen=True, slots=True)
class DnsTunnelConfig(Common):
    window: float = 300.0
    severity: str = "high"
    min_names: int = 30  # distinct query names under one domain from one client
    min_label_length: float = 20.0  # mean length of the part left of the domain
    min_entropy: float = 3.3  # mean Shannon entropy (bits/char) of that part
    min_bytes: int = 20_000  # query-name bytes under one domain: volume on its own
    allow_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BeaconConfig(Common):
    window: float = 3600.0
    min_connections: int = 8
    max_cv: float = 0.15  # coefficient of variation of the intervals
    min_interval: float = 5.0
    ignore_ports: tuple[int, ...] = (53, 67, 68, 123, 137, 138, 1900, 5353, 5355)


@dataclass(frozen=True, slots=True)
class ExfilConfig(Common):
    window: float = 600.0
    severity: str = "high"
    min_bytes: int = 50_000_000  # bytes sent from a home host to one outside host
    min_ratio: float = 5.0  # sent / received
    home_nets: tuple[str, ...] = RFC1918
    # a home host's bytes out per `window` against its own history (EWMA over past windows)
    baseline_z: float = 4.0  # standard deviations above its usual
    baseline_factor: float = 3.0  # and at least this many times its usual
    baseline_alpha: float = 0.3  # EWMA weight of the newest window
    min_baseline_windows: int = 3  # windows seen before the host has a usual
    min_anomaly_bytes: int = 10_000_000  # never below this

    def __post_init__(self) -> None:
        Common.__post_init__(self)
        for entry in self.home_nets:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"home_nets: {entry!r} is not a network") from None


@dataclass(frozen=True, slots=True)
class ArpScanConfig(Common):
    min_targets: int = 30  # distinct addresses asked for by one sender


@dataclass(frozen=True, slots=True)
class ArpSpoofConfig(Common):
    severity: str = "high"
    min_claimed: int = 2  # addresses one MAC claims in replies within the window
    min_replies: int = 4


@dataclass(frozen=True, slots=True)
class DetectorsConfig:
    port_scan: PortScanConfig = field(default_factory=PortScanConfig)
    host_sweep: HostSweepConfig = field(default_factory=HostSweepConfig)
    syn_flood: FloodConfig = field(default_factory=FloodConfig)
    udp_flood: FloodConfig = field(
        default_factory=lambda: FloodConfig(min_packets=10_000, min_single_source=5000)
    )
    icmp_flood: FloodConfig = field(
        default_factory=lambda: FloodConfig(min_packets=2000, min_single_source=1000)
    )
    reflection: ReflectionConfig = field(default_factory=ReflectionConfig)
    fan_in_ddos: FanInConfig = field(default_factory=FanInConfig)
    brute_force: BruteForceConfig = field(default_factory=BruteForceConfig)
    dns_tunnel: DnsTunnelConfig = field(default_factory=DnsTunnelConfig)
    beaconing: BeaconConfig = field(default_factory=BeaconConfig)
    exfiltration: ExfilConfig = field(default_factory=ExfilConfig)
    arp_scan: ArpScanConfig = field(default_factory=ArpScanConfig)
    arp_spoof: ArpSpoofConfig = field(default_factory=ArpSpoofConfig)


def _convert(path: str, name: str, value: Any, default: Any, hint: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise DetectorConfigError(path, name, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, int | float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DetectorConfigError(path, name, f"expected a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise DetectorConfigError(path, name, f"expected a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise DetectorConfigError(path, name, f"expected text, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise DetectorConfigError(path, name, f"expected a list, got {value!r}")
        item_type = typing.get_args(hint)[0] if typing.get_args(hint) else str
        want = int if item_type is int else str
        for item in value:
            if not isinstance(item, want) or isinstance(item, bool):
                raise DetectorConfigError(path, name, f"expected a list of {want.__name__}")
        return tuple(value)
    raise DetectorConfigError(path, name, "unsupported setting type")


def build_section(path: str, prefix: str, raw: Any, default: Any) -> Any:
    """A dataclass like `default` with the settings in `raw` applied and validated."""
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise DetectorConfigError(path, prefix, "must be a mapping of settings")
    cls = type(default)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise DetectorConfigError(path, name, f"unknown setting{hint}")
        current = getattr(default, key)
        if dataclasses.is_dataclass(current):
            values[key] = build_section(path, name, value, current)
        else:
            values[key] = _convert(path, name, value, current, hints[key])
    try:
        return dataclasses.replace(default, **values)
    except (ValueError, TypeError) as exc:
        raise DetectorConfigError(path, prefix, str(exc)) from exc


def load_detectors_config(path: str | Path | None = None) -> DetectorsConfig:
    """Load detector settings; None loads the shipped file (or built-in defaults if absent)."""
    p = Path(path) if path is not None else DEFAULT_DETECTORS_CONFIG
    if path is None and not p.exists():
        return DetectorsConfig()
    raw = read_yaml(p)
    return (
        build_section(str(p), "", raw, DetectorsConfig()) if raw is not None else DetectorsConfig()
    )


def read_yaml(p: Path) -> Any:
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DetectorConfigError(str(p), "", f"cannot read: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DetectorConfigError(
            str(p), "", f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc

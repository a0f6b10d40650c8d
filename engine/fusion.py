"""Verdict fusion: signature matches, detections and anomaly scores become one Verdict per flow or host.

Each input becomes a `Contribution` worth some points (0..100):

- a signature match: `signature_points[severity]`;
- a detection: `detection_points[severity] * detection.score`;
- an anomaly score at or above its threshold:
  `anomaly_floor + (anomaly_max - anomaly_floor) * (score - threshold) / (1 - threshold)`.

The fused score combines them like independent pieces of evidence:
`100 * (1 - prod(1 - points_i / 100))`, so it never exceeds 100, one strong
input is enough, and several weak ones add up. The label follows the score
(`malicious_at`, `suspicious_at`); a verdict with a signature match or a
detection is at least `suspicious`; one whose only support is an anomaly score
below `suspicious_at` is `anomalous`. Severity is the band the score falls in. All numbers are
in `FusionConfig` (config/fusion.yaml). `Fuser` adds suppression (drop inputs
by kind, name and address) and aggregation (a verdict repeating within
`aggregate_window` seconds is counted, not re-emitted, and reported once with
its count when the run ends).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.events import (
    SEVERITIES,
    AnomalyScore,
    Contribution,
    Detection,
    FlowKey,
    Match,
    Verdict,
    severity_rank,
)

DEFAULT_FUSION_CONFIG = Path(__file__).resolve().parent.parent / "config" / "fusion.yaml"

_DEFAULT_POINTS = (("info", 10.0), ("low", 25.0), ("medium", 50.0), ("high", 75.0), ("critical", 95.0))  # fmt: skip
SUPPRESS_KINDS = ("signature", "detection", "anomaly", "any")


class FusionConfigError(ValueError):
    """A fusion setting that cannot be used, naming the file and the setting."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class Suppression:
    """Drop inputs of `kind` named `name` ("*" any) whose source or host is in `address`."""

    kind: str = "any"
    name: str = "*"  # rule id, detector name or model kind
    address: str = ""  # address or network; "" any

    def __post_init__(self) -> None:
        if self.kind not in SUPPRESS_KINDS:
            raise ValueError(f"suppression kind must be one of {', '.join(SUPPRESS_KINDS)}")
        if self.address:
            ipaddress.ip_network(self.address, strict=False)


@dataclass(frozen=True, slots=True)
class FusionConfig:
    signature_points: tuple[tuple[str, float], ...] = _DEFAULT_POINTS
    detection_points: tuple[tuple[str, float], ...] = _DEFAULT_POINTS
    anomaly_floor: float = 15.0
    anomaly_max: float = 45.0
    malicious_at: float = 75.0
    suspicious_at: float = 40.0
    severity_bands: tuple[tuple[str, float], ...] = (
        ("critical", 90.0),
        ("high", 70.0),
        ("medium", 40.0),
        ("low", 15.0),
    )
    aggregate_window: float = 300.0
    max_pending: int = 65_536
    emit_benign: bool = False
    suppress: tuple[Suppression, ...] = ()

    def __post_init__(self) -> None:
        for name in ("signature_points", "detection_points"):
            table = dict(getattr(self, name))
            if set(table) != set(SEVERITIES):
                raise ValueError(f"{name} needs points for each of {', '.join(SEVERITIES)}")
            if any(not 0 <= v <= 100 for v in table.values()):
                raise ValueError(f"{name}: points must be 0..100")
        if not 0 <= self.anomaly_floor <= self.anomaly_max <= 100:
            raise ValueError("need 0 <= anomaly_floor <= anomaly_max <= 100")
        if not 0 < self.suspicious_at <= self.malicious_at <= 100:
            raise ValueError("need 0 < suspicious_at <= malicious_at <= 100")
        if self.aggregate_window < 0:
            raise ValueError("aggregate_window must not be negative")
        for sev, _ in self.severity_bands:
            severity_rank(sev)


def _points(table: tuple[tuple[str, float], ...], severity: str) -> float:
    return dict(table).get(severity, 0.0)


def _combine(points: Iterable[float]) -> float:
    rest = 1.0
    for p in points:
        rest *= 1.0 - min(max(p, 0.0), 100.0) / 100.0
    return round(100.0 * (1.0 - rest), 2)


def _band(cfg: FusionConfig, score: float) -> str:
    for sev, floor in cfg.severity_bands:
        if score >= floor:
            return sev
    return "info"


@dataclass(slots=True)
class _Group:
    flow: FlowKey | None = None
    host: str | None = None
    matches: list[Match] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    anomaly: AnomalyScore | None = None


def _flow_id(flow: FlowKey) -> Hashable:
    return ("flow", flow.community_id or (flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port, flow.proto))  # fmt: skip


def fuse(
    matches: Iterable[Match] = (),
    detections: Iterable[Detection] = (),
    scores: Iterable[AnomalyScore] = (),
    config: FusionConfig | None = None,
) -> list[Verdict]:
    """One verdict per flow (and per host for host-level detections), in time order."""
    cfg = config or FusionConfig()
    groups: dict[Hashable, _Group] = {}
    for m in matches:
        groups.setdefault(_flow_id(m.flow), _Group(flow=m.flow)).matches.append(m)
    for d in detections:
        if d.flow is not None:
            groups.setdefault(_flow_id(d.flow), _Group(flow=d.flow)).detections.append(d)
        else:
            groups.setdefault(("host", d.key), _Group(host=d.key)).detections.append(d)
    for a in scores:
        g = groups.setdefault(_flow_id(a.flow), _Group(flow=a.flow))
        if g.anomaly is None or a.score > g.anomaly.score:
            g.anomaly = a
    verdicts = [v for g in groups.values() if (v := _verdict(cfg, g)) is not None]
    verdicts.sort(key=lambda v: v.ts)
    return verdicts


def _verdict(cfg: FusionConfig, g: _Group) -> Verdict | None:
    contributions: list[Contribution] = []
    techniques: set[str] = set()
    tactics: set[str] = set()
    times: list[float] = []
    for m in g.matches:
        pts = _points(cfg.signature_points, m.severity)
        contributions.append(
            Contribution(
                "signature",
                m.title,
                f"rule {m.rule_id} \u201c{m.title}\u201d matched ({m.severity})",
                pts,
                str(m.rule_id),
            )
        )
        techniques.update(m.techniques)
        tactics.update(m.tactics)
        times.append(m.ts)
    for d in g.detections:
        pts = _points(cfg.detection_points, d.severity) * d.score
        contributions.append(Contribution("detection", d.detector, d.title, round(pts, 2), d.key))
        techniques.update(d.techniques)
        tactics.update(d.tactics)
        times.append(d.ts)
    a = g.anomaly
    anomalous = a is not None and a.is_anomalous
    if a is not None:
        pts = 0.0
        if anomalous:
            span = max(1.0 - a.threshold, 1e-9)
            frac = min(1.0, max(0.0, (a.score - a.threshold) / span))
            pts = cfg.anomaly_floor + (cfg.anomaly_max - cfg.anomaly_floor) * frac
        why = "; ".join(a.reasons[:2]) or "unusual combination of flow features"
        verb = "at or above" if anomalous else "below"
        contributions.append(
            Contribution(
                "anomaly",
                a.model,
                f"anomaly score {a.score:.2f} {verb} threshold {a.threshold:.2f}: {why}",
                round(pts, 2),
                a.model_version,
            )
        )
        times.append(a.ts)
    score = _combine(c.points for c in contributions)
    if score >= cfg.malicious_at:
        label = "malicious"
    elif score >= cfg.suspicious_at or g.matches or g.detections:
        label = "suspicious"  # a rule or detector that fired is never merely anomalous
    elif anomalous:
        label = "anomalous"
    else:
        label = "benign"
    if label == "benign" and not cfg.emit_benign:
        return None
    return Verdict(
        ts=max(times) if times else 0.0,
        score=score,
        label=label,
        severity=_band(cfg, score),
        flow=g.flow,
        host=g.host if g.flow is None else None,
        techniques=tuple(sorted(techniques)),
        tactics=tuple(sorted(tactics)),
        contributions=tuple(sorted(contributions, key=lambda c: -c.points)),
        matches=tuple(g.matches),
        detections=tuple(g.detections),
        anomaly=a,
    )


def _in(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


class Fuser:
    """Fusion with suppression and aggregation state (snapshot-able)."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.cfg = config or FusionConfig()
        # identity -> [first_ts, repeats not yet reported, latest verdict]
        self._pending: OrderedDict[Hashable, list[Any]] = OrderedDict()
        self.suppressed = 0
        self.aggregated = 0

    def _suppressed(self, kind: str, name: str, address: str) -> bool:
        for s in self.cfg.suppress:
            if s.kind not in ("any", kind) or s.name not in ("*", name):
                continue
            if not s.address or _in(address, s.address):
                return True
        return False

    def fuse(
        self,
        matches: Iterable[Match] = (),
        detections: Iterable[Detection] = (),
        scores: Iterable[AnomalyScore] = (),
    ) -> list[Verdict]:
        ms = [m for m in matches if not self._drop("signature", str(m.rule_id), m.flow.src_ip)]
        ds = [
            d
            for d in detections
            if not self._drop("detection", d.detector, d.flow.src_ip if d.flow else d.key)
        ]
        ss = [a for a in scores if not self._drop("anomaly", a.model, a.flow.src_ip)]
        out: list[Verdict] = []
        for v in fuse(ms, ds, ss, self.cfg):
            out.extend(self._aggregate(v))
        return out

    def _drop(self, kind: str, name: str, address: str) -> bool:
        if self.cfg.suppress and self._suppressed(kind, name, address):
            self.suppressed += 1
            return True
        return False

    @staticmethod
    def identity(v: Verdict) -> Hashable:
        """What makes two verdicts repeats: the same inputs about the same subject.

        A flow's subject ignores the source port, so repeated connections aggregate.
        """
        names = tuple(sorted({(c.kind, c.name) for c in v.contributions}))
        if v.flow is not None:
            subject: Hashable = (v.flow.src_ip, v.flow.dst_ip, v.flow.dst_port, v.flow.proto)
        else:
            subject = v.host
        return (names, subject)

    def _aggregate(self, v: Verdict) -> list[Verdict]:
        out = self._expire(v.ts)
        if self.cfg.aggregate_window <= 0:
            return [*out, v]
        ident = self.identity(v)
        entry = self._pending.get(ident)
        if entry is not None:
            entry[1] += 1
            if v.score >= entry[2].score:
                entry[2] = v
            self.aggregated += 1
            return out
        self._pending[ident] = [v.ts, 0, v]
        while len(self._pending) > self.cfg.max_pending:
            out.extend(self._close(self._pending.popitem(last=False)[1]))
        return [*out, v]

    def _close(self, entry: list[Any]) -> list[Verdict]:
        _first, repeats, latest = entry
        return [dataclasses.replace(latest, count=repeats)] if repeats else []

    def _expire(self, now: float) -> list[Verdict]:
        out: list[Verdict] = []
        while self._pending:
            entry = next(iter(self._pending.values()))
            if now - entry[0] <= self.cfg.aggregate_window:
                break
            self._pending.popitem(last=False)
            out.extend(self._close(entry))
        return out

    def flush(self) -> list[Verdict]:
        """Report every aggregated run still open (at the end of the input)."""
        out: list[Verdict] = []
        while self._pending:
            out.extend(self._close(self._pending.popitem(last=False)[1]))
        return out

    def snapshot(self) -> dict[str, Any]:
        """Counters and open runs (their verdicts are kept as objects: they are frozen values)."""
        return {
            "suppressed": self.suppressed,
            "aggregated": self.aggregated,
            "pending": [[k, list(v)] for k, v in self._pending.items()],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.suppressed = int(snap["suppressed"])
        self.aggregated = int(snap["aggregated"])
        self._pending = OrderedDict((k, list(v)) for k, v in snap["pending"])


def load_fusion_config(path: str | Path | None = None) -> FusionConfig:
    """Load fusion settings; None loads config/fusion.yaml (or built-in defaults if absent)."""
    from engine.detectors.config import read_yaml

    p = Path(path) if path is not None else DEFAULT_FUSION_CONFIG
    if path is None and not p.exists():
        return FusionConfig()
    try:
        raw = read_yaml(p)
    except ValueError as exc:
        raise FusionConfigError(str(p), "", str(exc).split(": ", 1)[-1]) from None
    if raw is None:
        return FusionConfig()
    if not isinstance(raw, dict):
        raise FusionConfigError(str(p), "", "the top level must be a mapping of settings")
    known = {f.name for f in dataclasses.fields(FusionConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise FusionConfigError(str(p), str(key), "unknown setting")
        if key in ("signature_points", "detection_points"):
            if not isinstance(value, dict):
                raise FusionConfigError(str(p), key, "must map each severity to points")
            values[key] = tuple((str(k), _number(p, f"{key}.{k}", v)) for k, v in value.items())
        elif key == "severity_bands":
            if not isinstance(value, dict):
                raise FusionConfigError(str(p), key, "must map severities to score floors")
            values[key] = tuple(
                sorted(
                    ((str(k), _number(p, f"{key}.{k}", v)) for k, v in value.items()),
                    key=lambda kv: -kv[1],
                )
            )
        elif key == "suppress":
            values[key] = tuple(_suppression(p, i, item) for i, item in enumerate(value or []))
        elif key == "emit_benign":
            if not isinstance(value, bool):
                raise FusionConfigError(str(p), key, "expected true or false")
            values[key] = value
        elif key == "max_pending":
            values[key] = int(_number(p, key, value))
        else:
            values[key] = _number(p, key, value)
    try:
        return FusionConfig(**values)
    except (ValueError, TypeError) as exc:
        raise FusionConfigError(str(p), "", str(exc)) from exc


def _number(p: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FusionConfigError(str(p), key, f"expected a number, got {value!r}")
    return float(value)


def _suppression(p: Path, i: int, item: Any) -> Suppression:
    where = f"suppress[{i}]"
    if not isinstance(item, dict) or not set(item) <= {"kind", "name", "address"}:
        raise FusionConfigError(str(p), where, "expected a mapping with kind, name, address")
    try:
        return Suppression(
            kind=str(item.get("kind", "any")),
            name=str(item.get("name", "*")),
            address=str(item.get("address", "")),
        )
    except ValueError as exc:
        raise FusionConfigError(str(p), where, str(exc)) from None

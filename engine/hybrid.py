"""The hybrid path: packets -> flows -> detectors + anomaly scorer (+ signature matches) -> verdicts.

`HybridEngine` owns a flow table, a `DetectorSet`, an optional `Scorer`, an
optional signature matcher and a `Fuser`. `process(batch)` decodes one packet
batch, cuts it into slices of packet time (so windows advance with the packets,
not per capture batch), runs the packet-level detectors and the flow table on
each slice, then the flow-level detectors and the scorer on the flows that
ended, and fuses everything into verdicts. `finish()` ends the remaining flows
and reports aggregated repeats. `run_hybrid(source, engine)` drives a capture
source through it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dpdk_io.batch import PacketBatch, Source
from dpdk_io.errors import CaptureError
from engine.anomaly import Scorer
from engine.decode import MALFORMED_REASONS, DecodedBatch, decode
from engine.defrag import Defragmenter
from engine.detectors import DetectorSet, load_detectors_config, time_slices
from engine.events import Detection, Match, Verdict
from engine.flows import FlowEvents, FlowRecords, FlowTable, FlowTableConfig
from engine.fusion import Fuser, load_fusion_config

#: A signature matcher: given a decoded slice and what it did to the flow table, the matches.
MatchFn = Callable[[DecodedBatch, FlowEvents], list[Match]]


@dataclass(slots=True)
class HybridStats:
    packets: int = 0
    flows: int = 0
    detections: int = 0
    anomalous_flows: int = 0
    verdicts: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    detectors: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "packets": self.packets,
            "flows": self.flows,
            "detections": self.detections,
            "anomalous_flows": self.anomalous_flows,
            "verdicts": self.verdicts,
            "labels": dict(self.labels),
            "detectors": dict(self.detectors),
            "malformed": dict(self.malformed),
        }


class HybridEngine:
    def __init__(
        self,
        *,
        flow_config: FlowTableConfig | None = None,
        detectors: DetectorSet | None = None,
        scorer: Scorer | None = None,
        fuser: Fuser | None = None,
        matcher: MatchFn | None = None,
        slice_seconds: float = 1.0,
        on_flows: Callable[[FlowRecords], None] | None = None,
    ) -> None:
        self._flow_config = flow_config or FlowTableConfig()
        self._table: FlowTable | None = None  # made on first use: `observe` callers keep their own
        self.detectors = detectors if detectors is not None else DetectorSet.from_config()
        self.scorer = scorer
        self.fuser = fuser if fuser is not None else Fuser()
        self.matcher = matcher
        self.slice_seconds = slice_seconds
        self.on_flows = on_flows  # sees every batch of ended flows (to store them, say)
        self.stats = HybridStats()
        self.defrag = Defragmenter()

    @property
    def table(self) -> FlowTable:
        if self._table is None:
            self._table = FlowTable(self._flow_config)
        return self._table

    @classmethod
    def from_files(
        cls,
        *,
        flow_config: FlowTableConfig | None = None,
        detectors: str | Path | None = None,
        fusion: str | Path | None = None,
        model: str | Path | None = None,
        use_model: bool = True,
        matcher: MatchFn | None = None,
        on_flows: Callable[[FlowRecords], None] | None = None,
    ) -> HybridEngine:
        """An engine from settings files: None loads the shipped detectors.yaml, fusion.yaml
        and anomaly model; `use_model=False` runs without the scorer.

        Raises DetectorConfigError, FusionConfigError or ModelError naming the bad file.
        """
        return cls(
            flow_config=flow_config,
            detectors=DetectorSet.from_config(load_detectors_config(detectors)),
            scorer=Scorer.load(model) if use_model else None,
            fuser=Fuser(load_fusion_config(fusion)),
            matcher=matcher,
            on_flows=on_flows,
        )

    def process(self, batch: PacketBatch) -> list[Verdict]:
        if not len(batch):
            return []
        decoded = self.defrag.reassemble(decode(batch))
        self.stats.packets += len(batch)
        for i, c in enumerate(decoded.malformed):
            if i and c:
                self.stats.malformed[MALFORMED_REASONS[i]] += int(c)
        out: list[Verdict] = []
        for part in time_slices(decoded, self.slice_seconds):
            detections = self.detectors.observe_packets(part)
            events = self.table.update(part)
            matches = self.matcher(part, events) if self.matcher is not None else []
            out.extend(self._fuse(matches, detections, events.ended))
        return out

    def process_records(self, records: FlowRecords, matches: Sequence[Match] = ()) -> list[Verdict]:
        """Flow-level work only: flow detectors, scorer and fusion over ended flows, with
        any signature matches raised without a packet (a flow's data flushed at its end)."""
        return self._fuse(list(matches), [], records)

    def observe(
        self, decoded: DecodedBatch, ended: FlowRecords, matches: Sequence[Match] = ()
    ) -> list[Verdict]:
        """One step for a packet loop that keeps its own flow table (and matcher).

        `decoded` is the batch the loop decoded, `ended` the flows its table
        ended on that batch, `matches` the signature matches it raised. Flows
        then count at the batch's last packet time rather than per slice.
        """
        self.stats.packets += len(decoded.batch)
        detections = self.detectors.observe_packets(decoded)
        return self._fuse(list(matches), detections, ended)

    def _fuse(
        self, matches: list[Match], detections: list[Detection], ended: FlowRecords
    ) -> list[Verdict]:
        scores = []
        if len(ended):
            self.stats.flows += len(ended)
            if self.on_flows is not None:
                self.on_flows(ended)
            detections = detections + self.detectors.observe_flows(ended)
            if self.scorer is not None:
                scores = self.scorer.score(ended)
                self.stats.anomalous_flows += len(scores)
        if not (matches or detections or scores):
            return []
        self.stats.detections += len(detections)
        self.stats.detectors.update(d.detector for d in detections)
        return self._count(self.fuser.fuse(matches, detections, scores))

    def finish(self) -> list[Verdict]:
        rest = self._table.flush() if self._table is not None else FlowRecords.empty()
        out = self._fuse([], [], rest)
        return out + self._count(self.fuser.flush())

    def _count(self, verdicts: list[Verdict]) -> list[Verdict]:
        self.stats.verdicts += len(verdicts)
        self.stats.labels.update(v.label for v in verdicts)
        return verdicts


def run_hybrid(source: Source, engine: HybridEngine) -> Iterator[Verdict]:
    """Every verdict for a capture, in the order they are reached.

    A `CaptureError` from the source is raised after the verdicts of every
    packet read before it.
    """
    failure: CaptureError | None = None
    try:
        while (batch := source.next_batch()) is not None:
            yield from engine.process(batch)
    except CaptureError as exc:
        failure = exc
    yield from engine.finish()
    if failure is not None:
        raise failure

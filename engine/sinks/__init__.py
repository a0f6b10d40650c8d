"""Where verdicts go: the embedded store (default), Elasticsearch, or both.

`open_sink(config.output, data_dir=...)` returns a `Sink`; the pipeline calls
`write_batch(verdicts)` as verdicts come, and `close()` (or leaves a `with`
block) at the end. Undeliverable verdicts land in a dead-letter NDJSON file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from engine.ecs import EcsContext
from engine.events import Verdict
from engine.sinks.base import EncodedVerdict, Sink, SinkStats, encode
from engine.sinks.config import ElasticsearchConfig, OutputConfig, StoreConfig
from engine.sinks.deadletter import DeadLetterFile
from engine.sinks.errors import (
    DeadLetterError,
    ElasticsearchSinkError,
    SinkError,
    TemplateConflictError,
    VerdictStoreError,
)
from engine.store import default_data_dir

__all__ = [
    "DeadLetterError",
    "ElasticsearchConfig",
    "ElasticsearchSinkError",
    "EncodedVerdict",
    "FanoutSink",
    "OutputConfig",
    "Sink",
    "SinkError",
    "SinkStats",
    "StoreConfig",
    "TemplateConflictError",
    "VerdictStoreError",
    "dead_letter_dir",
    "encode",
    "open_sink",
]


def dead_letter_dir(config: OutputConfig, data_dir: str | os.PathLike[str] | None) -> Path:
    if config.dead_letter_dir:
        return Path(config.dead_letter_dir)
    return (Path(data_dir) if data_dir is not None else default_data_dir()) / "dead-letter"


def open_sink(
    config: OutputConfig,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    es_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    preflight: bool = True,
) -> Sink:
    """The sink the configuration asks for.

    `es_url` (from `--es-url`) overrides the configured URL. Empty
    Elasticsearch settings are read from SHRIKE_ES_* variables. With
    `preflight`, an Elasticsearch sink checks at once that the cluster answers
    and `shrike es-setup` has run, raising ElasticsearchSinkError otherwise.
    """
    es = config.elasticsearch
    if es_url:
        try:
            es = replace(es, url=es_url, cloud_id=None)
        except ValueError as exc:
            raise ElasticsearchSinkError("--es-url", str(exc)) from None
    es = es.with_environment(environ)
    kind = config.sink
    if kind == "auto":
        kind = "elasticsearch" if es.enabled else "store"
    if kind in ("elasticsearch", "both") and not es.enabled:
        raise ElasticsearchSinkError(
            "output.elasticsearch", "no url or cloud_id (set one, or SHRIKE_ES_URL, or --es-url)"
        )
    context = EcsContext(
        observer_name=config.sensor_name,
        observer_hostname=os.uname().nodename,
        home_networks=config.home_networks,
        namespace=es.namespace,
    )
    letters = dead_letter_dir(config, data_dir)
    sinks: list[Sink] = []
    try:
        if kind in ("store", "both"):
            from engine.sinks.store import StoreSink

            sinks.append(
                StoreSink(
                    config.store,
                    data_dir=data_dir,
                    dead_letter=DeadLetterFile.in_directory(letters, "store"),
                    context=context,
                )
            )
        if kind in ("elasticsearch", "both"):
            from engine.sinks.elasticsearch import ElasticsearchSink

            es_sink = ElasticsearchSink(
                es,
                dead_letter=DeadLetterFile.in_directory(letters, "elasticsearch"),
                context=context,
            )
            sinks.append(es_sink)
            if preflight:
                es_sink.preflight()
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks[0] if len(sinks) == 1 else FanoutSink(sinks)


class FanoutSink(Sink):
    """The same verdicts into several sinks (`sink: both`)."""

    name = "fanout"

    def __init__(self, sinks: Sequence[Sink]) -> None:
        super().__init__()
        self.sinks = tuple(sinks)

    @property
    def location(self) -> str:
        return " and ".join(s.location for s in self.sinks)

    @property
    def dead_letter_files(self) -> tuple[Path, ...]:
        return tuple(p for s in self.sinks for p in s.dead_letter_files)

    def write_batch(self, verdicts: Sequence[Verdict]) -> None:
        self.stats.received += len(verdicts)
        for s in self.sinks:
            s.write_batch(verdicts)

    def flush(self) -> None:
        for s in self.sinks:
            s.flush()

    def close(self) -> None:
        errors: list[BaseException] = []
        for s in self.sinks:
            try:
                s.close()
            except SinkError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

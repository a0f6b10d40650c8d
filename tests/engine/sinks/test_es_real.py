"""Against a real Elasticsearch: runs when SHRIKE_ES_URL is set (README: `docker compose up -d`,
then `SHRIKE_ES_URL=http://localhost:9200 python3 -m pytest -q tests/engine/sinks/test_es_real.py`).
Credentials, if the cluster needs them, come from SHRIKE_ES_API_KEY or SHRIKE_ES_USERNAME/PASSWORD."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sink_verdicts import mixed_verdicts

from engine.sinks.base import encode
from engine.sinks.config import ElasticsearchConfig
from engine.sinks.deadletter import DeadLetterFile
from engine.sinks.elasticsearch import ElasticsearchSink, build_client
from integrations.elastic.setup import es_setup

pytestmark = pytest.mark.skipif(
    not os.environ.get("SHRIKE_ES_URL"), reason="set SHRIKE_ES_URL to test against Elasticsearch"
)


@pytest.fixture
def config() -> Iterator[ElasticsearchConfig]:
    cfg = ElasticsearchConfig(namespace=f"test{uuid.uuid4().hex[:8]}").with_environment()
    yield cfg
    client = build_client(cfg)
    try:
        client.indices.delete_data_stream(name=cfg.data_stream)
    finally:
        client.close()


def test_setup_write_and_search(config: ElasticsearchConfig, tmp_path: Path) -> None:
    client = build_client(config)
    try:
        first = es_setup(client, data_stream=config.data_stream, where=config.where)
        again = es_setup(client, data_stream=config.data_stream, where=config.where)
        assert first.lines[-1].endswith("created") and again.lines[-1].endswith("already there")
        verdicts = mixed_verdicts(300)
        with ElasticsearchSink(
            config, dead_letter=DeadLetterFile(tmp_path / "dead.ndjson"), client=client
        ) as sink:
            sink.write_batch(verdicts)
            sink.write_batch(verdicts[:50])  # the same verdicts again: found, not doubled
        assert sink.stats.dead_lettered == 0, sink.stats.last_error
        assert sink.stats.duplicates == 50
        client.indices.refresh(index=config.data_stream)
        assert client.count(index=config.data_stream)["count"] == 300
        hits = client.search(
            index=config.data_stream,
            query={"term": {"threat.technique.id": "T1046"}},
            size=0,
            aggs={"src": {"terms": {"field": "shrike.host"}}},
        )
        assert hits["hits"]["total"]["value"] == 100
        doc = client.get(index=config.data_stream, id=encode(verdicts[0]).doc_id)
        assert doc["_source"]["rule"]["id"] == "9000002"
        mapping = client.indices.get_mapping(index=config.data_stream)
        (backing,) = mapping.body.values()
        assert backing["mappings"]["properties"]["source"]["properties"]["ip"]["type"] == "ip"
    finally:
        client.close()

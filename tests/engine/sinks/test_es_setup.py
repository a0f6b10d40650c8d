"""`shrike es-setup` against a local server: installs, is idempotent, refuses clashes."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from esfake import FakeElasticsearch
from sink_cli import shrike as main

from engine.sinks.config import ElasticsearchConfig
from engine.sinks.elasticsearch import build_client
from engine.sinks.errors import ElasticsearchSinkError, TemplateConflictError
from integrations.elastic import flat_field_types, index_template, mappings_component
from integrations.elastic.setup import es_setup

STREAM = "logs-shrike.alert-default"


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as fake:
        yield fake


def _setup(es: FakeElasticsearch, *, force: bool = False) -> list[str]:
    client = build_client(ElasticsearchConfig(url=es.url))
    try:
        return es_setup(client, data_stream=STREAM, where=es.url, force=force).lines
    finally:
        client.close()


def test_installs_everything_and_runs_again(es: FakeElasticsearch) -> None:
    first = _setup(es)
    assert first[-1] == f"data stream {STREAM}: created"
    assert set(es.state.component_templates) == {
        "shrike-alerts@mappings",
        "shrike-alerts@settings",
    }
    assert es.state.index_templates["shrike-alerts"]["index_patterns"] == ["logs-shrike.alert-*"]
    assert es.state.ilm_policies["shrike-alerts"]["policy"]["phases"]["delete"]["min_age"] == "90d"
    assert STREAM in es.state.data_streams
    second = _setup(es)
    assert second[-1] == f"data stream {STREAM}: already there"


def test_template_shape() -> None:
    tpl = index_template()
    assert tpl["data_stream"] == {} and tpl["priority"] > 100  # above the built-in logs-*-*
    mappings = mappings_component()["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    types = flat_field_types()
    assert types["source.ip"] == "ip" and types["related.ip"] == "ip"
    assert types["event.severity"] == "long" and types["shrike.score"] == "float"
    assert types["threat.technique.name.text"] == "match_only_text"


def test_refuses_a_template_shrike_did_not_install(es: FakeElasticsearch) -> None:
    es.state.index_templates["shrike-alerts"] = {"index_patterns": ["x-*"], "priority": 1}
    with pytest.raises(TemplateConflictError, match="was not installed by Shrike"):
        _setup(es)
    assert es.state.index_templates["shrike-alerts"]["index_patterns"] == ["x-*"]  # untouched
    assert _setup(es, force=True)


def test_refuses_a_newer_template(es: FakeElasticsearch) -> None:
    _setup(es)
    es.state.index_templates["shrike-alerts"]["version"] = 99
    with pytest.raises(TemplateConflictError, match="version 99, newer than this Shrike's 1"):
        _setup(es)


def test_refuses_a_template_that_would_win(es: FakeElasticsearch) -> None:
    es.state.index_templates["everything"] = {"index_patterns": ["logs-*"], "priority": 500}
    with pytest.raises(TemplateConflictError, match=r"everything .priority 500.*take precedence"):
        _setup(es)


def test_refuses_a_stream_with_clashing_mappings(es: FakeElasticsearch) -> None:
    _setup(es)
    comp = copy.deepcopy(es.state.component_templates["shrike-alerts@mappings"])
    props = comp["template"]["mappings"]["properties"]
    props["source"]["properties"]["ip"] = {"type": "keyword"}
    es.state.component_templates["shrike-alerts@mappings"] = comp
    with pytest.raises(TemplateConflictError, match=r"source.ip is keyword in .*Shrike writes ip"):
        _setup(es)


def test_unreachable_cluster_is_named() -> None:
    client = build_client(ElasticsearchConfig(url="http://127.0.0.1:9", request_timeout=2))
    with pytest.raises(ElasticsearchSinkError, match=r"http://127.0.0.1:9: cannot reach"):
        es_setup(client, data_stream=STREAM, where="http://127.0.0.1:9")


def test_cli(es: FakeElasticsearch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["es-setup", "--es-url", es.url]) == 0
    assert f"ready: verdicts go to {STREAM}" in capsys.readouterr().out
    es.state.index_templates["shrike-alerts"]["_meta"] = {}
    assert main(["es-setup", "--es-url", es.url]) == 1
    assert "refused" in capsys.readouterr().err
    assert main(["es-setup", "--es-url", "localhost:9200"]) == 2
    assert "url must look like https://host:9200" in capsys.readouterr().err

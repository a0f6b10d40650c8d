"""Kibana saved objects: every field they use is mapped (and aggregatable where they
aggregate), every reference resolves, and `shrike kibana-import` loads them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from esfake import FakeElasticsearch
from sink_cli import shrike as main

from engine.sinks.errors import KibanaError
from integrations.elastic import flat_field_types, index_template, kibana_objects
from integrations.elastic.kibana import KibanaAuth, import_saved_objects

AGGREGATABLE = {"keyword", "constant_keyword", "ip", "long", "float", "byte", "date", "boolean"}


def _by_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in kibana_objects() if o["type"] == kind]


def _kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z@_][\w.@]*)\s*(?::|>=|<=|>|<)", query))


def test_the_dashboard_has_the_panels_analysts_need() -> None:
    titles = {o["attributes"]["title"] for o in kibana_objects()}
    assert {
        "Shrike: verdicts over time by severity",
        "Shrike: top signatures",
        "Shrike: top source addresses",
        "Shrike: top destination addresses",
        "Shrike: ATT&CK tactics",
        "Shrike: ATT&CK techniques",
        "Shrike: verdict labels",
        "Shrike: anomaly score distribution",
        "Shrike: recent verdicts",
        "Shrike: verdicts overview",
    } <= titles
    (view,) = _by_type("index-pattern")
    patterns = index_template()["index_patterns"]
    assert view["attributes"]["title"] in patterns
    assert view["attributes"]["timeFieldName"] == "@timestamp"


def test_every_field_a_visualization_uses_is_mapped() -> None:
    mapped = flat_field_types()
    used: list[tuple[str, str, bool]] = []  # (object, field, aggregated)
    for vis in _by_type("visualization"):
        state = json.loads(vis["attributes"]["visState"])
        for agg in state["aggs"]:
            field = agg["params"].get("field")
            if field:
                used.append((vis["id"], field, True))
        source = json.loads(vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        used += [(vis["id"], f, False) for f in _kql_fields(source["query"]["query"])]
    for search in _by_type("search"):
        attrs = search["attributes"]
        used += [(search["id"], c, False) for c in attrs["columns"]]
        used += [(search["id"], s[0], True) for s in attrs["sort"]]
        source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
        used += [(search["id"], f, False) for f in _kql_fields(source["query"]["query"])]
    assert len(used) > 15
    for obj, field, aggregated in used:
        assert field in mapped, f"{obj} uses {field}, which the index template does not map"
        if aggregated:
            assert mapped[field] in AGGREGATABLE, f"{obj} aggregates {field} ({mapped[field]})"


def test_every_reference_resolves() -> None:
    objects = {(o["type"], o["id"]) for o in kibana_objects()}
    for obj in kibana_objects():
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in objects, f"{obj['id']} -> {ref}"
    (dash,) = _by_type("dashboard")
    panels = json.loads(dash["attributes"]["panelsJSON"])
    names = {r["name"] for r in dash["references"]}
    assert {p["panelRefName"] for p in panels} == names
    assert len(panels) == len(_by_type("visualization")) + len(_by_type("search"))


def test_import_through_the_saved_objects_api(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeElasticsearch() as kibana:
        result = import_saved_objects(kibana.url, auth=KibanaAuth(api_key="a2V5"), space="soc")
        assert result.imported == len(kibana_objects())
        assert kibana.state.kibana_imports[0] == kibana_objects()
        headers = kibana.state.kibana_headers[0]
        assert headers["kbn-xsrf"] == "true" and headers["Authorization"] == "ApiKey a2V5"
        assert kibana.state.kibana_spaces == ["soc"]
        assert main(["kibana-import", "--kibana-url", kibana.url]) == 0
        assert "imported 11 saved objects" in capsys.readouterr().out


def test_import_errors_are_clear() -> None:
    with pytest.raises(KibanaError, match="must look like http://host:5601"):
        import_saved_objects("kibana:5601")
    with pytest.raises(KibanaError, match=r"127\.0\.0\.1:9: cannot reach Kibana"):
        import_saved_objects("http://127.0.0.1:9", timeout=2)
    with FakeElasticsearch() as kibana, pytest.raises(KibanaError, match="HTTP 404"):
        import_saved_objects(kibana.url + "/wrong")

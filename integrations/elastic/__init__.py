"""Elasticsearch and Kibana resources for Shrike verdicts: ILM policy, component and
index templates, Kibana saved objects, and the code that installs them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from engine.sinks.elasticsearch import INDEX_TEMPLATE_NAME

#: Names of what `shrike es-setup` installs.
ILM_POLICY = "shrike-alerts"
MAPPINGS_COMPONENT = "shrike-alerts@mappings"
SETTINGS_COMPONENT = "shrike-alerts@settings"
INDEX_TEMPLATE = INDEX_TEMPLATE_NAME
KIBANA_OBJECTS = "kibana/shrike.ndjson"


@cache
def _resource_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text("utf-8")


def resource(name: str) -> dict[str, Any]:
    """A packaged JSON resource (`ilm-policy.json`, `index-template.json`, ...), a fresh copy."""
    data = json.loads(_resource_text(name))
    assert isinstance(data, dict)
    return data


def ilm_policy() -> dict[str, Any]:
    return resource("ilm-policy.json")


def mappings_component() -> dict[str, Any]:
    return resource("component-mappings.json")


def settings_component() -> dict[str, Any]:
    return resource("component-settings.json")


def index_template() -> dict[str, Any]:
    return resource("index-template.json")


def field_mappings() -> dict[str, Any]:
    """The `properties` of the mapping every Shrike document is written against."""
    props = mappings_component()["template"]["mappings"]["properties"]
    assert isinstance(props, dict)
    return props


def flat_field_types(properties: dict[str, Any] | None = None) -> dict[str, str]:
    """Every mapped field by dotted name (`source.ip` -> `ip`), multi-fields included;
    of Shrike's mapping, or of `properties` from another mapping."""
    out: dict[str, str] = {}

    def walk(prefix: str, props: dict[str, Any]) -> None:
        for name, spec in props.items():
            path = f"{prefix}{name}"
            if "properties" in spec:
                walk(f"{path}.", spec["properties"])
                continue
            out[path] = spec.get("type", "object")
            for sub, sub_spec in spec.get("fields", {}).items():
                out[f"{path}.{sub}"] = sub_spec.get("type", "object")

    walk("", field_mappings() if properties is None else properties)
    return out


def kibana_objects_text() -> str:
    """The Kibana saved objects (data view, searches, visualizations, dashboard) as NDJSON."""
    return _resource_text(KIBANA_OBJECTS)


def kibana_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in kibana_objects_text().splitlines() if line.strip()]

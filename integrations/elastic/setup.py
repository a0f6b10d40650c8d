"""`shrike es-setup`: install the ILM policy, component and index templates and the
data stream for Shrike verdicts. Safe to run again; refuses, saying why, when
something already in the cluster would clash."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from engine.sinks.errors import ElasticsearchSinkError, TemplateConflictError
from integrations.elastic import (
    ILM_POLICY,
    INDEX_TEMPLATE,
    MAPPINGS_COMPONENT,
    SETTINGS_COMPONENT,
    flat_field_types,
    ilm_policy,
    index_template,
    mappings_component,
    settings_component,
)


@dataclass(slots=True)
class SetupReport:
    """What es-setup did, one line per object."""

    lines: list[str] = field(default_factory=list)


def es_setup(
    client: Elasticsearch,
    *,
    data_stream: str,
    where: str,
    force: bool = False,
) -> SetupReport:
    """Install everything for `data_stream`; TemplateConflictError explains a refusal."""
    report = SetupReport()
    try:
        _check_index_template(client, data_stream, force)
        for name in (MAPPINGS_COMPONENT, SETTINGS_COMPONENT):
            _check_component(client, name, force)
        _check_existing_stream(client, data_stream)
        client.ilm.put_lifecycle(name=ILM_POLICY, policy=ilm_policy()["policy"])
        report.lines.append(f"ILM policy {ILM_POLICY}: installed")
        for name, body in (
            (MAPPINGS_COMPONENT, mappings_component()),
            (SETTINGS_COMPONENT, settings_component()),
        ):
            client.cluster.put_component_template(name=name, **body)
            report.lines.append(f"component template {name}: installed")
        client.indices.put_index_template(name=INDEX_TEMPLATE, **index_template())
        report.lines.append(f"index template {INDEX_TEMPLATE}: installed")
        if _stream_exists(client, data_stream):
            report.lines.append(f"data stream {data_stream}: already there")
        else:
            client.indices.create_data_stream(name=data_stream)
            report.lines.append(f"data stream {data_stream}: created")
    except (ApiError, TransportError) as exc:
        raise ElasticsearchSinkError(where, _describe(exc)) from exc
    except TemplateConflictError as exc:
        raise TemplateConflictError(where, exc.message) from None
    return report


def _ours(body: dict[str, Any]) -> bool:
    return (body.get("_meta") or {}).get("managed_by") == "shrike"


def _check_version(kind: str, name: str, existing: dict[str, Any], shipped: dict[str, Any]) -> None:
    have, want = existing.get("version"), shipped.get("version")
    if isinstance(have, int) and isinstance(want, int) and have > want:
        raise TemplateConflictError(
            "",
            f"{kind} {name} is version {have}, newer than this Shrike's {want}; "
            "upgrade Shrike instead of downgrading the template",
        )


def _check_index_template(client: Elasticsearch, data_stream: str, force: bool) -> None:
    try:
        found = client.indices.get_index_template().body.get("index_templates", [])
    except NotFoundError:
        found = []
    shipped = index_template()
    for entry in found:
        name, body = entry["name"], entry["index_template"]
        if name == INDEX_TEMPLATE:
            if not _ours(body) and not force:
                raise TemplateConflictError(
                    "",
                    f"index template {name} exists but was not installed by Shrike "
                    "(no _meta.managed_by: shrike); remove it or rerun with --force to replace it",
                )
            _check_version("index template", name, body, shipped)
            continue
        patterns = body.get("index_patterns", [])
        if isinstance(patterns, str):
            patterns = [patterns]
        if not any(fnmatch.fnmatchcase(data_stream, p) for p in patterns):
            continue
        priority = int(body.get("priority") or 0)
        if priority >= shipped["priority"]:
            raise TemplateConflictError(
                "",
                f"index template {name} (priority {priority}, patterns {', '.join(patterns)}) "
                f"also matches {data_stream} and would take precedence over Shrike's "
                f"(priority {shipped['priority']}); lower its priority or narrow its patterns",
            )


def _check_component(client: Elasticsearch, name: str, force: bool) -> None:
    try:
        found = client.cluster.get_component_template(name=name).body.get("component_templates", [])
    except NotFoundError:
        return
    for entry in found:
        body = entry["component_template"]
        if not _ours(body) and not force:
            raise TemplateConflictError(
                "",
                f"component template {name} exists but was not installed by Shrike; "
                "remove it or rerun with --force to replace it",
            )
        shipped = mappings_component() if name == MAPPINGS_COMPONENT else settings_component()
        _check_version("component template", name, body, shipped)


def _stream_exists(client: Elasticsearch, data_stream: str) -> bool:
    try:
        client.indices.get_data_stream(name=data_stream)
    except NotFoundError:
        return False
    return True


def _check_existing_stream(client: Elasticsearch, data_stream: str) -> None:
    """An existing stream must map every shared field as Shrike does, or documents would bounce."""
    if not _stream_exists(client, data_stream):
        if client.indices.exists(index=data_stream):
            raise TemplateConflictError(
                "", f"{data_stream} exists as a plain index, not a data stream; remove or rename it"
            )
        return
    mappings = client.indices.get_mapping(index=data_stream).body
    wanted = flat_field_types()
    clashes: list[str] = []
    for index, body in sorted(mappings.items()):
        have = flat_field_types(body.get("mappings", {}).get("properties", {}))
        for name, kind in sorted(have.items()):
            if name in wanted and wanted[name] != kind:
                clashes.append(f"{name} is {kind} in {index}, Shrike writes {wanted[name]}")
    if clashes:
        shown = "; ".join(clashes[:5]) + (
            f"; and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        )
        raise TemplateConflictError(
            "",
            f"data stream {data_stream} has incompatible mappings: {shown}. "
            "Roll it over after es-setup, or use another output.elasticsearch.namespace",
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        info = exc.info if isinstance(exc.info, dict) else {}
        err = info.get("error") if isinstance(info, dict) else None
        if isinstance(err, dict):
            return f"HTTP {exc.status_code} {err.get('type')}: {err.get('reason')}"
        return f"HTTP {exc.status_code} {exc.message}"
    return f"cannot reach: {type(exc).__name__}: {exc}"

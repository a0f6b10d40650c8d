"""Checks a document against Shrike's index mapping the way Elasticsearch would read it:
every field must be mapped (the mapping is strict) and every value of a type the
field accepts. It holds `to_ecs` to the template in the test suite."""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime
from typing import Any

from integrations.elastic import field_mappings

_INTEGER_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}


def document_problems(doc: dict[str, Any], properties: dict[str, Any] | None = None) -> list[str]:
    """What Elasticsearch would reject in `doc`, one `field: problem` line each; [] when none."""
    problems: list[str] = []
    _walk(doc, properties if properties is not None else field_mappings(), "", problems)
    return problems


def _walk(obj: dict[str, Any], props: dict[str, Any], prefix: str, out: list[str]) -> None:
    for key, value in obj.items():
        path = f"{prefix}{key}"
        spec = props.get(key)
        if spec is None:
            out.append(f"{path}: not mapped")
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None:
                continue
            if "properties" in spec:
                if isinstance(item, dict):
                    _walk(item, spec["properties"], f"{path}.", out)
                else:
                    out.append(f"{path}: an object field holds {type(item).__name__} {item!r}")
                continue
            problem = _leaf_problem(spec.get("type", "object"), item)
            if problem:
                out.append(f"{path}: {problem}")


def _leaf_problem(kind: str, value: Any) -> str:
    if kind in ("keyword", "constant_keyword", "match_only_text", "text", "wildcard"):
        return "" if isinstance(value, str) else f"{kind} needs text, got {value!r}"
    if kind in _INTEGER_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{kind} needs an integer, got {value!r}"
        low, high = _INTEGER_RANGES[kind]
        return "" if low <= value <= high else f"{value} is out of range for {kind}"
    if kind in ("float", "double", "half_float", "scaled_float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{kind} needs a number, got {value!r}"
        return "" if math.isfinite(value) else f"{kind} cannot hold {value!r}"
    if kind == "boolean":
        return "" if isinstance(value, bool) else f"boolean needs true or false, got {value!r}"
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except (ValueError, TypeError):
            return f"ip needs an address, got {value!r}"
        return ""
    if kind in ("date", "date_nanos"):
        if not isinstance(value, str):
            return f"{kind} needs an ISO 8601 text, got {value!r}"
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return f"{kind} cannot parse {value!r}"
        return ""
    if kind == "flattened":
        return "" if isinstance(value, dict) else f"flattened needs an object, got {value!r}"
    return f"unsupported mapping type {kind}"

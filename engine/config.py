"""Shrike's configuration: one validated dataclass tree loaded from YAML."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.flows import FlowTableConfig
from engine.sinks.config import OutputConfig, parse_output

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "shrike.yaml"


class ConfigError(ValueError):
    """A configuration file that cannot be used, naming the file and the setting."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class ShrikeConfig:
    data_dir: str | None = None
    flows: FlowTableConfig = field(default_factory=FlowTableConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def _section(path: str, prefix: str, raw: Any, cls: type) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(path, prefix, f"must be a mapping of settings, not {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}.{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(path, name, f"unknown setting{hint}")
        default = fields[key].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and isinstance(default, int) and not isinstance(value, int):
                ok = float(value).is_integer()
                value = int(value)
        else:
            ok = True
        if not ok:
            raise ConfigError(path, name, f"expected a number, got {value!r}")
        values[key] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(path, prefix, str(exc)) from exc


def load_config(path: str | Path | None = None) -> ShrikeConfig:
    """Load a configuration file; None loads the shipped defaults (or built-ins if absent)."""
    p = Path(path) if path is not None else DEFAULT_CONFIG
    if path is None and not p.exists():
        return ShrikeConfig()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            str(p), "", f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    if raw is None:
        return ShrikeConfig()
    if not isinstance(raw, dict):
        raise ConfigError(str(p), "", "the top level must be a mapping of settings")
    known = {"data_dir", "flows", "output"}
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(str(p), str(key), f"unknown setting{hint}")
    data_dir = raw.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise ConfigError(str(p), "data_dir", "must be a directory path")
    return ShrikeConfig(
        data_dir=data_dir,
        flows=_section(str(p), "flows", raw.get("flows"), FlowTableConfig),
        output=parse_output(str(p), raw.get("output")),
    )

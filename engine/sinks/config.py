"""The `output:` section of shrike.yaml: where verdicts go and how they are sent.

Credentials may stay out of the file: empty Elasticsearch settings are filled
from `SHRIKE_ES_URL`, `SHRIKE_ES_CLOUD_ID`, `SHRIKE_ES_API_KEY`,
`SHRIKE_ES_USERNAME`, `SHRIKE_ES_PASSWORD` and `SHRIKE_ES_CA_FILE`. Secrets are
kept out of `repr` so a logged configuration never shows them.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SINK_KINDS = ("auto", "store", "elasticsearch", "both")

_ENV = {
    "url": "SHRIKE_ES_URL",
    "cloud_id": "SHRIKE_ES_CLOUD_ID",
    "api_key": "SHRIKE_ES_API_KEY",
    "username": "SHRIKE_ES_USERNAME",
    "password": "SHRIKE_ES_PASSWORD",
    "ca_file": "SHRIKE_ES_CA_FILE",
}


@dataclass(frozen=True, slots=True)
class ElasticsearchConfig:
    """Connection, batching and retry settings of the Elasticsearch sink."""

    url: str | None = None
    cloud_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    verify_certs: bool = True
    namespace: str = "default"
    batch_docs: int = 500
    batch_bytes: int = 5_000_000
    flush_interval: float = 1.0
    queue_docs: int = 20_000
    max_retries: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    request_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("batch_docs", "batch_bytes", "queue_docs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("flush_interval", "initial_backoff", "max_backoff", "request_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be above 0")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url must look like https://host:9200, not {redact(self.url)!r}")
        if self.url and self.cloud_id:
            raise ValueError("give url or cloud_id, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if not self.namespace or any(c in self.namespace for c in '-\\/*?"<>| ,#:'):
            raise ValueError(f"namespace {self.namespace!r} is not a data stream namespace")

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.cloud_id)

    @property
    def data_stream(self) -> str:
        return f"logs-shrike.alert-{self.namespace}"

    @property
    def where(self) -> str:
        """The cluster as it may appear in messages: URL without credentials, or the cloud id."""
        if self.url:
            return redact(self.url)
        if self.cloud_id:
            return f"cloud id {self.cloud_id.split(':', 1)[0]}"
        return "elasticsearch (no url)"

    def with_environment(self, environ: Mapping[str, str] | None = None) -> ElasticsearchConfig:
        """Settings left empty here, filled from SHRIKE_ES_* variables."""
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for name, var in _ENV.items():
            if getattr(self, name) is None and env.get(var):
                changes[name] = env[var]
        if "url" in changes and self.cloud_id:
            del changes["url"]
        if "cloud_id" in changes and (self.url or "url" in changes):
            del changes["cloud_id"]
        return dataclasses.replace(self, **changes) if changes else self


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The embedded store: commit batching and retention (0 turns a limit off)."""

    batch_verdicts: int = 2000
    flush_interval: float = 1.0
    retention_days: float = 30.0
    retention_mb: float = 1024.0

    def __post_init__(self) -> None:
        if self.batch_verdicts < 1:
            raise ValueError("batch_verdicts must be at least 1")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be above 0")
        if self.retention_days < 0 or self.retention_mb < 0:
            raise ValueError("retention limits must be 0 (off) or more")


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """Where verdicts go. `auto`: Elasticsearch when a URL or cloud id is set, else the store."""

    sink: str = "auto"
    sensor_name: str = ""
    home_networks: tuple[str, ...] = ()
    dead_letter_dir: str | None = None
    elasticsearch: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def __post_init__(self) -> None:
        if self.sink not in SINK_KINDS:
            raise ValueError(f"sink must be one of {', '.join(SINK_KINDS)}, not {self.sink!r}")
        for net in self.home_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"home_networks: {net!r} is not an address or CIDR") from None


def redact(url: str) -> str:
    """A URL without its user and password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_output(path: str, raw: Any) -> OutputConfig:
    """The `output:` mapping of a config file as an OutputConfig; ConfigError names path and key."""
    if raw is None:
        return OutputConfig()
    values = _fields(path, "output", raw, OutputConfig, nested=("elasticsearch", "store"))
    if "elasticsearch" in values:
        values["elasticsearch"] = _build(
            path,
            "output.elasticsearch",
            ElasticsearchConfig,
            _fields(path, "output.elasticsearch", values["elasticsearch"], ElasticsearchConfig),
        )
    if "store" in values:
        values["store"] = _build(
            path,
            "output.store",
            StoreConfig,
            _fields(path, "output.store", values["store"], StoreConfig),
        )
    if "home_networks" in values:
        nets = values["home_networks"]
        if not isinstance(nets, list) or not all(isinstance(n, str) for n in nets):
            _fail(path, "output.home_networks", "must be a list of addresses or CIDRs")
        values["home_networks"] = tuple(nets)
    return _build(path, "output", OutputConfig, values)


def _fail(path: str, key: str, message: str) -> None:
    from engine.config import ConfigError  # engine.config imports this module

    raise ConfigError(path, key, message)


def _build(path: str, prefix: str, cls: type, values: dict[str, Any]) -> Any:
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        _fail(path, prefix, str(exc))


def _fields(
    path: str, prefix: str, raw: Any, cls: type, nested: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        _fail(path, prefix, f"must be a mapping of settings, not {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}.{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            _fail(path, name, "unknown setting" + (f" (did you mean {close[0]}?)" if close else ""))
        if key in nested or key == "home_networks":
            values[key] = value
            continue
        default = fields[key].default
        if value is None:
            if default is not None:
                _fail(path, name, "must have a value")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                _fail(path, name, f"expected true or false, got {value!r}")
        elif isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(path, name, f"expected a number, got {value!r}")
            if isinstance(default, int):
                if not float(value).is_integer():
                    _fail(path, name, f"expected a whole number, got {value!r}")
                value = int(value)
            else:
                value = float(value)
        elif not isinstance(value, str):
            _fail(path, name, f"expected text, got {value!r}")
        values[key] = value
    return values

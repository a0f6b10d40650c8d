"""`shrike kibana-import`: load Shrike's data view, saved search, visualizations and
dashboard into Kibana through its saved objects import API."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from engine.sinks.config import redact
from engine.sinks.errors import KibanaError
from integrations.elastic import kibana_objects_text


@dataclass(frozen=True, slots=True)
class KibanaAuth:
    """API key (base64 `id:key`) or user and password; secrets stay out of repr."""

    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def header(self) -> dict[str, str]:
        if self.api_key:
            return {"Authorization": f"ApiKey {self.api_key}"}
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        return {}


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    titles: tuple[str, ...]


def import_saved_objects(
    kibana_url: str,
    *,
    auth: KibanaAuth = KibanaAuth(),
    space: str | None = None,
    ca_file: str | None = None,
    verify_certs: bool = True,
    timeout: float = 30.0,
    ndjson: str | None = None,
) -> ImportResult:
    """POST the saved objects (overwriting Shrike's earlier copies); KibanaError says what failed."""
    where = redact(kibana_url)
    parts = urlsplit(kibana_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KibanaError(where, "the Kibana URL must look like http://host:5601")
    if ca_file and not Path(ca_file).is_file():
        raise KibanaError(ca_file, "CA file not found")
    base = kibana_url.rstrip("/")
    prefix = f"/s/{space}" if space else ""
    url = f"{base}{prefix}/api/saved_objects/_import?overwrite=true"
    body, content_type = urllib3.encode_multipart_formdata(
        {
            "file": (
                "shrike.ndjson",
                (ndjson or kibana_objects_text()).encode(),
                "application/ndjson",
            )
        }
    )
    headers = {"kbn-xsrf": "true", "Content-Type": content_type, **auth.header()}
    pool_kw: dict[str, Any] = {"timeout": timeout, "retries": False}
    if parts.scheme == "https":
        pool_kw["cert_reqs"] = "CERT_REQUIRED" if verify_certs else "CERT_NONE"
        if ca_file:
            pool_kw["ca_certs"] = ca_file
    try:
        with urllib3.PoolManager(**pool_kw) as http:
            resp = http.request("POST", url, body=body, headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        raise KibanaError(where, f"cannot reach Kibana: {exc}") from None
    try:
        answer = json.loads(resp.data or b"{}")
    except json.JSONDecodeError:
        raise KibanaError(where, f"HTTP {resp.status}: the answer is not JSON") from None
    if resp.status != 200:
        message = answer.get("message") or answer.get("error") or "refused"
        raise KibanaError(where, f"HTTP {resp.status}: {message}")
    if not answer.get("success"):
        problems = [
            f"{e.get('type')} {e.get('id')}: {json.dumps(e.get('error'))}"
            for e in answer.get("errors", [])
        ]
        raise KibanaError(where, "import failed: " + "; ".join(problems or ["no reason given"]))
    results = answer.get("successResults", [])
    return ImportResult(
        imported=int(answer.get("successCount", len(results))),
        titles=tuple(str((r.get("meta") or {}).get("title") or r.get("id")) for r in results),
    )

"""A small HTTP server on 127.0.0.1 that speaks the parts of the Elasticsearch and
Kibana APIs Shrike uses (bulk, templates, ILM, data streams, mappings, saved
objects import), keeps what it is sent, checks documents against the mapping it
was given, and fails on request: whole-request 429/503, per-document 429,
mapping rejections, and connections dropped before or after a bulk is applied.

Elasticsearch cannot run in the test environment; a test against a real cluster
runs when SHRIKE_ES_URL is set (see test_es_real.py).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from integrations.elastic.mapping_check import document_problems


@dataclass
class FakeState:
    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data_streams: dict[str, str] = field(default_factory=dict)  # name -> backing index
    index_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    component_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    ilm_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # faults, one per bulk request in order: "429", "503", "drop_before", "drop_after",
    # "html" (a proxy's page), "no_items" (JSON without items), "short_items" (one item missing)
    request_faults: list[str] = field(default_factory=list)
    # per-document 429s: how many times each doc id is refused before it is taken
    item_429: dict[str, int] = field(default_factory=dict)
    # documents refused with a mapping error whatever happens
    reject: Callable[[dict[str, Any]], bool] = lambda _doc: False
    check_mappings: bool = True  # benchmarks turn this off to time the client side
    bulk_requests: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # mapping errors answered, per id
    kibana_imports: list[list[dict[str, Any]]] = field(default_factory=list)
    kibana_headers: list[dict[str, str]] = field(default_factory=list)
    kibana_spaces: list[str] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)

    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        backing = self.data_streams.get(index, index)
        return self.indices.get(backing, {})


class FakeElasticsearch:
    """Start with `with FakeElasticsearch() as es:`; `es.url` is the base URL. Given an
    SSL context, it serves HTTPS."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.state = FakeState()
        self.lock = threading.Lock()
        handler = _make_handler(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeElasticsearch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # the mapping the server checks documents against: that of the template matching the index
    def mapping_for(self, index: str) -> dict[str, Any] | None:
        for tpl in self.state.index_templates.values():
            patterns = tpl.get("index_patterns", [])
            if any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), index) for p in patterns):
                props: dict[str, Any] = {}
                for name in tpl.get("composed_of", []):
                    comp = self.state.component_templates.get(name, {})
                    props.update(comp.get("template", {}).get("mappings", {}).get("properties", {}))
                return props
        return None

    def create_data_stream(self, name: str) -> str:
        backing = f".ds-{name}-2024.05.01-000001"
        self.state.data_streams[name] = backing
        self.state.indices.setdefault(backing, {})
        return backing


def _error(kind: str, reason: str, status: int) -> dict[str, Any]:
    return {"error": {"type": kind, "reason": reason, "root_cause": []}, "status": status}


def _make_handler(fake: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    state = fake.state

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def _send(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _json(self) -> Any:
            raw = self._body()
            return json.loads(raw) if raw else {}

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_GET(self) -> None:
            self._route("GET")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, method: str) -> None:
            path = unquote(self.path.split("?", 1)[0])
            state.auth_headers.append(self.headers.get("Authorization", ""))
            space = re.match(r"^/s/([\w-]+)(/api/.*)$", path)
            if space:
                state.kibana_spaces.append(space.group(1))
                path = space.group(2)
            if path.startswith("/api/"):
                return self._kibana(method, path)
            if path in ("/_bulk",) or path.endswith("/_bulk"):
                return self._bulk()
            with fake.lock:
                return self._admin(method, path)

        def _admin(self, method: str, path: str) -> None:
            parts = [p for p in path.split("/") if p]
            if not parts:
                return self._send(
                    200,
                    {
                        "name": "fake",
                        "cluster_name": "shrike-test",
                        "version": {"number": "8.19.0", "build_flavor": "default"},
                        "tagline": "You Know, for Search",
                    },
                )
            if parts[0] == "_index_template":
                return self._templates(method, parts, state.index_templates, "index")
            if parts[0] == "_component_template":
                return self._templates(method, parts, state.component_templates, "component")
            if parts[:2] == ["_ilm", "policy"]:
                name = parts[2]
                if method == "PUT":
                    body = self._json()
                    old = state.ilm_policies.get(name)
                    version = (old or {}).get("version", 0) + 1
                    state.ilm_policies[name] = {"version": version, "policy": body["policy"]}
                    return self._send(200, {"acknowledged": True})
                if name not in state.ilm_policies:
                    return self._send(404, _error("resource_not_found_exception", name, 404))
                return self._send(200, {name: state.ilm_policies[name]})
            if parts[0] == "_data_stream":
                name = parts[1]
                if method == "PUT":
                    self._body()
                    if name in state.data_streams:
                        return self._send(
                            400, _error("resource_already_exists_exception", name, 400)
                        )
                    if fake.mapping_for(name) is None:
                        return self._send(
                            400, _error("illegal_argument_exception", "no matching template", 400)
                        )
                    fake.create_data_stream(name)
                    return self._send(200, {"acknowledged": True})
                if name not in state.data_streams:
                    return self._send(404, _error("index_not_found_exception", name, 404))
                return self._send(
                    200,
                    {
                        "data_streams": [
                            {
                                "name": name,
                                "indices": [{"index_name": state.data_streams[name]}],
                                "template": "shrike-alerts",
                            }
                        ]
                    },
                )
            if len(parts) == 2 and parts[1] == "_mapping":
                name = parts[0]
                backing = state.data_streams.get(name)
                props = fake.mapping_for(name)
                if backing is None and name in state.indices:
                    return self._send(200, {name: {"mappings": {"properties": {}}}})
                if backing is None or props is None:
                    return self._send(404, _error("index_not_found_exception", name, 404))
                return self._send(200, {backing: {"mappings": {"properties": props}}})
            if method in ("GET", "HEAD") and len(parts) == 1:
                name = parts[0]
                if name in state.indices or name in state.data_streams:
                    return self._send(200, {name: {}})
                return self._send(404, _error("index_not_found_exception", name, 404))
            return self._send(404, _error("not_found", path, 404))

        def _templates(
            self, method: str, parts: list[str], store: dict[str, Any], kind: str
        ) -> None:
            key = f"{kind}_templates"
            inner = f"{kind}_template"
            if method == "PUT":
                store[parts[1]] = self._json()
                return self._send(200, {"acknowledged": True})
            names = [parts[1]] if len(parts) > 1 else sorted(store)
            found = [n for n in names if n in store]
            if not found and len(parts) > 1:
                return self._send(404, {key: []} if method != "HEAD" else None)
            return self._send(200, {key: [{"name": n, inner: store[n]} for n in found]})

        def _bulk(self) -> None:
            raw = self._body()
            with fake.lock:
                state.bulk_requests += 1
                fault = state.request_faults.pop(0) if state.request_faults else ""
            if fault == "drop_before":
                self.close_connection = True
                self.connection.close()
                return
            if fault == "html":  # a proxy's error page
                page = b"<html><body>502 Bad Gateway</body></html>"
                self.send_response(200)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if fault == "no_items":
                return self._send(200, {"took": 1, "errors": False})
            if fault in ("429", "503"):
                status = int(fault)
                kind = "es_rejected_execution_exception" if status == 429 else "unavailable"
                return self._send(status, _error(kind, "try later", status))
            lines = raw.decode().splitlines()
            items = []
            with fake.lock:
                for header_line, body_line in zip(lines[0::2], lines[1::2], strict=True):
                    ((op, meta),) = json.loads(header_line).items()
                    doc = json.loads(body_line)
                    items.append({op: self._index_one(op, meta, doc)})
            if fault == "drop_after":  # applied, but the answer never arrives
                self.close_connection = True
                self.connection.close()
                return
            if fault == "short_items":  # applied, but the answer leaves the last item out
                items = items[:-1]
            errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
            return self._send(200, {"took": 1, "errors": errors, "items": items})

        def _index_one(self, op: str, meta: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
            index, doc_id = meta["_index"], meta["_id"]
            state.seen[doc_id] += 1
            out: dict[str, Any] = {"_index": index, "_id": doc_id}
            if op != "create":
                return {**out, "status": 400, **_error("illegal_argument_exception", op, 400)}
            if index not in state.data_streams:
                if fake.mapping_for(index) is None:
                    state.indices.setdefault(index, {})
                else:
                    fake.create_data_stream(index)
            docs = state.documents(index)
            if state.item_429.get(doc_id, 0) > 0:
                state.item_429[doc_id] -= 1
                return {
                    **out,
                    "status": 429,
                    **_error("es_rejected_execution_exception", "queue full", 429),
                }
            if doc_id in docs:
                return {
                    **out,
                    "status": 409,
                    **_error("version_conflict_engine_exception", "document already exists", 409),
                }
            props = fake.mapping_for(index)
            check = props is not None and state.check_mappings
            problems = document_problems(doc, props) if check else []
            if problems or state.reject(doc):
                reason = problems[0] if problems else "failed to parse field [source.ip]"
                state.refused[doc_id] += 1
                return {**out, "status": 400, **_error("document_parsing_exception", reason, 400)}
            docs[doc_id] = doc
            return {**out, "status": 201, "result": "created"}

        def _kibana(self, method: str, path: str) -> None:
            raw = self._body()
            state.kibana_headers.append(dict(self.headers.items()))
            if method != "POST" or path != "/api/saved_objects/_import":
                return self._send(404, {"statusCode": 404, "error": "Not Found"})
            if self.headers.get("kbn-xsrf") is None:
                return self._send(
                    400, {"statusCode": 400, "message": "Request must contain a kbn-xsrf header."}
                )
            ctype = self.headers.get("Content-Type", "")
            m = re.search(r"boundary=(.+)$", ctype)
            if not m:
                return self._send(415, {"statusCode": 415, "message": "multipart expected"})
            boundary = m.group(1).strip('"').encode()
            objects: list[dict[str, Any]] = []
            for part in raw.split(b"--" + boundary):
                if b'name="file"' not in part:
                    continue
                body = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
                objects = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
            state.kibana_imports.append(objects)
            return self._send(
                200,
                {
                    "success": True,
                    "successCount": len(objects),
                    "successResults": [
                        {
                            "type": o["type"],
                            "id": o["id"],
                            "meta": {"title": o["attributes"].get("title")},
                        }
                        for o in objects
                    ],
                },
            )

    return Handler


if __name__ == "__main__":
    # serve in a process of its own (benchmarks): print the URL, stop when stdin closes
    import sys

    with FakeElasticsearch() as fake:
        fake.state.check_mappings = "--check-mappings" in sys.argv
        print(fake.url, flush=True)
        sys.stdin.read()

"""The Elasticsearch sink against a local server speaking the bulk and template APIs,
made to fail in every way the sink must survive."""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from esfake import FakeElasticsearch
from sink_cli import shrike as main
from sink_verdicts import mixed_verdicts, signature_verdict

from engine.ecs import to_ecs
from engine.sinks import open_sink
from engine.sinks.base import encode
from engine.sinks.config import ElasticsearchConfig, OutputConfig
from engine.sinks.deadletter import DeadLetterFile, read_dead_letters
from engine.sinks.elasticsearch import Backoff, ElasticsearchSink, build_client, replay_dead_letters
from engine.sinks.errors import DeadLetterError, ElasticsearchSinkError
from integrations.elastic.setup import es_setup

STREAM = "logs-shrike.alert-default"


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as fake:
        client = build_client(ElasticsearchConfig(url=fake.url))
        es_setup(client, data_stream=STREAM, where=fake.url)
        client.close()
        yield fake


def _config(es: FakeElasticsearch, **kw: object) -> ElasticsearchConfig:
    base = {"url": es.url, "initial_backoff": 0.001, "max_backoff": 0.004, "flush_interval": 30.0}
    base.update(kw)
    return ElasticsearchConfig(**base)  # type: ignore[arg-type]


def _sink(es: FakeElasticsearch, tmp_path: Path, **kw: object) -> ElasticsearchSink:
    return ElasticsearchSink(
        _config(es, **kw),
        dead_letter=DeadLetterFile(tmp_path / "dead.ndjson"),
        rng=random.Random(7),
    )


def _ids(verdicts: list) -> set[str]:  # type: ignore[type-arg]
    return {encode(v).doc_id for v in verdicts}


def test_documents_arrive_once_each_in_batches(es: FakeElasticsearch, tmp_path: Path) -> None:
    verdicts = mixed_verdicts(1000)
    with _sink(es, tmp_path, batch_docs=100) as sink:
        for i in range(0, 1000, 37):
            sink.write_batch(verdicts[i : i + 37])
    stored = es.state.documents(STREAM)
    assert set(stored) == _ids(verdicts)
    assert stored[encode(verdicts[0]).doc_id] == to_ecs(verdicts[0])
    assert es.state.bulk_requests == 10
    assert sink.stats.delivered == 1000 and sink.stats.dead_lettered == 0
    assert not (tmp_path / "dead.ndjson").exists()


def test_batches_close_by_bytes(es: FakeElasticsearch, tmp_path: Path) -> None:
    verdicts = mixed_verdicts(60)
    total = sum(encode(v).size for v in verdicts)
    with _sink(es, tmp_path, batch_docs=1000, batch_bytes=total // 6) as sink:
        sink.write_batch(verdicts)
    assert es.state.bulk_requests in (6, 7)
    assert len(es.state.documents(STREAM)) == 60


def test_batches_close_by_time_without_flush(es: FakeElasticsearch, tmp_path: Path) -> None:
    sink = _sink(es, tmp_path, batch_docs=1000, flush_interval=0.05)
    sink.write_batch(mixed_verdicts(5))
    deadline = time.monotonic() + 5
    while len(es.state.documents(STREAM)) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(es.state.documents(STREAM)) == 5  # sent by the timer, not by flush()
    sink.close()


def test_every_failure_mode_ends_indexed_once_or_dead_lettered(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    verdicts = mixed_verdicts(600)
    ids = [encode(v).doc_id for v in verdicts]
    es.state.request_faults = [
        "429",
        "drop_after",
        "503",
        "html",
        "drop_before",
        "",
        "no_items",
        "drop_after",
        "short_items",
        "429",
    ]
    for doc_id in ids[5:400:7]:
        es.state.item_429[doc_id] = 2  # refused twice, then taken
    rejected = set(ids[10:600:50])
    es.state.reject = lambda doc: encode_id(doc) in rejected
    # enough retries to outlast the faults: a document whose last attempt got no answer may
    # be both stored and dead-lettered (replay then finds it), which this test rules out
    with _sink(es, tmp_path, batch_docs=100, max_retries=12) as sink:
        sink.write_batch(verdicts)
    stored = set(es.state.documents(STREAM))
    letters = list(read_dead_letters(tmp_path / "dead.ndjson"))
    dead = {d.doc_id for d in letters}
    assert stored | dead == set(ids)
    assert not stored & dead
    assert dead == rejected
    # mapping errors are not retried (max_retries is 12): a document is refused again only
    # when the answer carrying its refusal was lost (two dropped answers, one short answer)
    assert all(1 <= es.state.refused[d] <= 4 for d in dead)
    assert {d.status for d in letters} == {400}
    assert all("document_parsing_exception" in d.error for d in letters)
    # dropped answers made the sink send documents the server already had: found, not doubled
    assert sink.stats.duplicates > 0
    assert max(es.state.seen.values()) > 1
    assert sink.stats.delivered == len(stored) and sink.stats.dead_lettered == len(dead)
    assert sink.stats.retries > 0


def encode_id(doc: dict) -> str:  # type: ignore[type-arg]
    """The id the sink gives a document (the same blake2b of the same JSON text)."""
    import base64
    import hashlib

    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(
        hashlib.blake2b(body.encode(), digest_size=15).digest()
    ).decode()


def test_exhausted_retries_dead_letter_and_replay_indexes_the_rest(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    verdicts = mixed_verdicts(250)
    with _sink(es, tmp_path, batch_docs=100, max_retries=2) as sink:
        sink.write_batch(verdicts[:100])
        sink.flush()
        es.state.request_faults = ["503"] * 3 + ["drop_before"] * 3
        sink.write_batch(verdicts[100:])
    letters = list(read_dead_letters(tmp_path / "dead.ndjson"))
    assert len(letters) == 150 and {d.attempts for d in letters} == {3}
    assert len(es.state.documents(STREAM)) == 100
    # the cluster is back: replay sends the rest, under the same ids
    again = DeadLetterFile(tmp_path / "again.ndjson")
    replayed = replay_dead_letters(
        read_dead_letters(tmp_path / "dead.ndjson"), _config(es), dead_letter=again
    )
    assert replayed.stats.delivered == 150 and replayed.stats.dead_lettered == 0
    assert set(es.state.documents(STREAM)) == _ids(verdicts)
    # replaying twice changes nothing
    twice = replay_dead_letters(
        read_dead_letters(tmp_path / "dead.ndjson"), _config(es), dead_letter=again
    )
    assert twice.stats.duplicates == 150
    assert len(es.state.documents(STREAM)) == 250


def test_replay_command(
    es: FakeElasticsearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    es.state.request_faults = ["503"] * 10
    with _sink(es, tmp_path, max_retries=1) as sink:
        sink.write_batch(mixed_verdicts(20))
    es.state.request_faults = []
    argv = [
        "es-replay",
        str(tmp_path / "dead.ndjson"),
        "--es-url",
        es.url,
        "--data-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    assert "20 verdicts, 20 indexed, 0 already there" in capsys.readouterr().out
    assert len(es.state.documents(STREAM)) == 20


def test_bad_dead_letter_file_is_located(tmp_path: Path) -> None:
    p = tmp_path / "d.ndjson"
    good = json.dumps({"id": "abc", "document": {"a": 1}})
    p.write_text(f"{good}\n\n{{not json\n")
    with pytest.raises(DeadLetterError, match=rf"{p}:3: not JSON"):
        list(read_dead_letters(p))
    p.write_text(f"{good}\n" + json.dumps({"document": {}}) + "\n")
    with pytest.raises(DeadLetterError, match=rf"{p}:2: has no 'id'"):
        list(read_dead_letters(p))


def test_full_queue_holds_the_pipeline_back(es: FakeElasticsearch, tmp_path: Path) -> None:
    gate = threading.Event()
    es.state.request_faults = ["503"]
    sink = ElasticsearchSink(
        _config(es, batch_docs=10, queue_docs=20),
        dead_letter=DeadLetterFile(tmp_path / "dead.ndjson"),
        sleep=lambda _s: gate.wait(),
    )
    sink.write_batch(mixed_verdicts(10))  # taken by the sender, which then waits to retry
    deadline = time.monotonic() + 5
    while es.state.bulk_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.write_batch(mixed_verdicts(30)[10:30])  # fills the queue
    done = threading.Event()

    def produce() -> None:
        sink.write_batch([signature_verdict(99)])
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    assert not done.wait(0.3)  # waiting for room, not growing memory
    gate.set()
    assert done.wait(5)
    t.join()
    sink.close()
    assert sink.stats.blocked == 1
    assert len(es.state.documents(STREAM)) == 31


def test_a_crashed_sender_dead_letters_everything(
    es: FakeElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.sinks.elasticsearch as mod

    def explode(*_a: object, **_k: object) -> Iterator[tuple[bool, dict]]:  # type: ignore[type-arg]
        raise RuntimeError("serializer bug")
        yield  # pragma: no cover

    monkeypatch.setattr(mod.helpers, "streaming_bulk", explode)
    sink = _sink(es, tmp_path)
    sink.write_batch(mixed_verdicts(7))
    with pytest.raises(ElasticsearchSinkError, match="serializer bug"):
        sink.flush()
    with pytest.raises(ElasticsearchSinkError):
        sink.write_batch(mixed_verdicts(3))
    with pytest.raises(ElasticsearchSinkError):
        sink.close()
    assert len(list(read_dead_letters(tmp_path / "dead.ndjson"))) == 10


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    b = Backoff(0.5, 4.0, random.Random(1))
    assert [b.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    delays = [b.delay(3) for _ in range(200)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150  # jittered, not a fixed step


def test_preflight_names_the_missing_setup(tmp_path: Path) -> None:
    with (
        FakeElasticsearch() as bare,
        pytest.raises(ElasticsearchSinkError, match="run `shrike es-setup` first"),
    ):
        open_sink(OutputConfig(), data_dir=tmp_path, es_url=bare.url, environ={})
    with pytest.raises(ElasticsearchSinkError, match="cannot reach"):
        open_sink(
            OutputConfig(elasticsearch=ElasticsearchConfig(request_timeout=2)),
            data_dir=tmp_path,
            es_url="http://127.0.0.1:9",
            environ={},
        )


def test_open_sink_picks_elasticsearch_from_the_environment(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    sink = open_sink(OutputConfig(), data_dir=tmp_path, environ={"SHRIKE_ES_URL": es.url})
    assert isinstance(sink, ElasticsearchSink)
    sink.write_batch(mixed_verdicts(3))
    sink.close()
    assert len(es.state.documents(STREAM)) == 3
    both = open_sink(
        replace(OutputConfig(), sink="both"), data_dir=tmp_path, environ={"SHRIKE_ES_URL": es.url}
    )
    both.write_batch(mixed_verdicts(6))
    both.close()
    assert len(es.state.documents(STREAM)) == 6
    from engine.sinks.store import VerdictStore

    assert VerdictStore(tmp_path).count() == 6


def test_credentials_are_sent_but_never_logged(
    es: FakeElasticsearch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = es.url.replace("http://", "http://elastic:s3cret-pw@")
    es.state.request_faults = ["503"]
    with ElasticsearchSink(
        ElasticsearchConfig(url=url, initial_backoff=0.001),
        dead_letter=DeadLetterFile(tmp_path / "d"),
    ) as sink:
        sink.write_batch(mixed_verdicts(2))
    assert "Basic ZWxhc3RpYzpzM2NyZXQtcHc=" in es.state.auth_headers
    assert "s3cret" not in caplog.text
    assert sink.location.startswith(es.url)
    keyed = ElasticsearchSink(
        ElasticsearchConfig(url=es.url, api_key="a2V5OnNlY3JldA=="),
        dead_letter=DeadLetterFile(tmp_path / "d"),
    )
    keyed.write_batch(mixed_verdicts(1))
    keyed.close()
    assert "ApiKey a2V5OnNlY3JldA==" in es.state.auth_headers
    assert "a2V5OnNlY3JldA" not in caplog.text


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ElasticsearchSinkError, match="CA file not found"):
        build_client(ElasticsearchConfig(url="https://es:9200", ca_file=str(tmp_path / "ca.pem")))


def test_a_dead_cluster_costs_later_batches_one_attempt(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    verdicts = mixed_verdicts(500)
    es.state.request_faults = ["drop_before"] * 7
    sink = _sink(es, tmp_path, batch_docs=100, max_retries=3)
    sink.write_batch(verdicts[:300])
    sink.flush()
    # batch 1: 1 + 3 retries; batches 2 and 3: one attempt each
    assert es.state.bulk_requests == 6
    assert sink.stats.dead_lettered == 300
    # batch 4 gets its single attempt refused, then the cluster answers: full retries again
    es.state.request_faults = ["drop_before", "503", "503"]
    sink.write_batch(verdicts[300:400])
    sink.flush()
    assert sink.stats.dead_lettered == 400
    sink.write_batch(verdicts[400:])
    sink.flush()
    assert len(es.state.documents(STREAM)) == 100
    sink.close()


def test_tls_with_a_ca_file(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with FakeElasticsearch(tls=server_ctx) as es:
        assert es.url.startswith("https://")
        client = build_client(ElasticsearchConfig(url=es.url, ca_file=str(ca_file)))
        es_setup(client, data_stream=STREAM, where=es.url)
        client.close()
        with ElasticsearchSink(
            ElasticsearchConfig(url=es.url, ca_file=str(ca_file)),
            dead_letter=DeadLetterFile(tmp_path / "d1.ndjson"),
        ) as sink:
            sink.write_batch(mixed_verdicts(4))
        assert len(es.state.documents(STREAM)) == 4
        # without the CA the server is not trusted: nothing is sent, nothing is lost
        with ElasticsearchSink(
            ElasticsearchConfig(url=es.url, max_retries=0),
            dead_letter=DeadLetterFile(tmp_path / "d2.ndjson"),
        ) as untrusted:
            untrusted.write_batch(mixed_verdicts(8)[4:])
        letters = list(read_dead_letters(tmp_path / "d2.ndjson"))
        assert len(letters) == 4 and "certificate verify failed" in letters[0].error.lower()
        assert len(es.state.documents(STREAM)) == 4


def test_store_dead_letters_replay_into_the_data_stream(
    es: FakeElasticsearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.sinks.deadletter import DeadLetter

    verdicts = mixed_verdicts(3)
    store_letters = DeadLetterFile(tmp_path / "store.ndjson")
    store_letters.write(
        [DeadLetter(e.doc_id, "store", e.body, "disk full") for e in map(encode, verdicts)]
    )
    store_letters.close()
    argv = ["es-replay", str(tmp_path / "store.ndjson"), "--es-url", es.url]
    assert main([*argv, "--data-dir", str(tmp_path)]) == 0
    assert set(es.state.documents(STREAM)) == _ids(verdicts)
    assert "store" not in es.state.indices
    capsys.readouterr()
    (tmp_path / "bad.ndjson").write_text('{"id": "x", "document": {}}\n[1]\n')
    assert main(["es-replay", str(tmp_path / "bad.ndjson"), "--es-url", es.url]) == 2
    assert (
        f"{tmp_path / 'bad.ndjson'}:2: a dead letter must be a JSON object"
        in capsys.readouterr().err
    )
    assert "x" not in es.state.seen  # nothing was sent


def test_cloud_id_points_the_client_at_the_deployment() -> None:
    import base64

    encoded = base64.b64encode(b"eu-west-1.aws.found.io:443$abc123$def456").decode()
    cfg = ElasticsearchConfig(cloud_id=f"shrike-prod:{encoded}", api_key="a2V5")
    assert cfg.enabled and cfg.where == "cloud id shrike-prod"
    client = build_client(cfg)
    (node,) = client.transport.node_pool.all()
    assert node.config.host == "abc123.eu-west-1.aws.found.io"
    assert node.config.scheme == "https"
    client.close()
    with pytest.raises(ValueError, match="url or cloud_id, not both"):
        ElasticsearchConfig(url="https://x:9200", cloud_id=f"shrike-prod:{encoded}")

"""Verdicts in the embedded store: batching, queries, retention, failures, `shrike alerts`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from sink_cli import shrike as main
from sink_verdicts import T0, anomaly_verdict, mixed_verdicts, scan_verdict, signature_verdict

from engine.config import load_config
from engine.sinks import encode, open_sink
from engine.sinks.config import OutputConfig, StoreConfig
from engine.sinks.deadletter import DeadLetterFile, read_dead_letters
from engine.sinks.errors import VerdictStoreError
from engine.sinks.store import AlertQuery, StoreSink, VerdictStore
from engine.store import FlowStore


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _sink(tmp_path: Path, **kw: object) -> StoreSink:
    return StoreSink(
        StoreConfig(**kw),  # type: ignore[arg-type]
        data_dir=tmp_path,
        dead_letter=DeadLetterFile(tmp_path / "dead.ndjson"),
    )


def test_verdicts_share_the_flow_database(tmp_path: Path) -> None:
    with FlowStore(tmp_path) as flows, _sink(tmp_path) as sink:
        sink.write_batch(mixed_verdicts(9))
        sink.flush()
        assert sink.path == flows.path
    db = sqlite3.connect(tmp_path / "shrike.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"flows", "verdicts", "verdict_techniques", "meta"} <= tables
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {
        "verdicts_ts",
        "verdicts_severity",
        "verdicts_rule",
        "verdicts_src",
        "verdict_techniques_technique",
    } <= indexes
    assert db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 9


def test_batches_commit_by_count_and_by_time(tmp_path: Path) -> None:
    clock = Clock()
    sink = StoreSink(
        StoreConfig(batch_verdicts=5, flush_interval=2.0),
        data_dir=tmp_path,
        dead_letter=DeadLetterFile(tmp_path / "d.ndjson"),
        clock=clock,
    )
    reader = VerdictStore(tmp_path)
    sink.write_batch(mixed_verdicts(4))
    assert reader.count() == 0  # waiting for a full batch
    sink.write_batch(mixed_verdicts(1))
    assert reader.count() == 5 and sink.stats.requests == 1
    sink.write_batch([signature_verdict(7)])
    clock.t += 1.0
    sink.write_batch([])
    assert reader.count() == 5
    clock.t += 1.5
    sink.write_batch([])  # an empty write still commits a batch that waited long enough
    assert reader.count() == 6
    sink.close()
    assert sink.stats.delivered == 6 and sink.stats.dead_lettered == 0


def test_queries_filter_on_indexed_columns(tmp_path: Path) -> None:
    with _sink(tmp_path) as sink:
        sink.write_batch(
            [
                signature_verdict(0, severity="high"),
                signature_verdict(1, severity="low"),
                scan_verdict(2),
                anomaly_verdict(3),
                signature_verdict(4, severity="critical", ts=T0 - 7200),
            ]
        )
    store = VerdictStore(tmp_path)
    everything = store.query(AlertQuery())
    assert [round(v.ts - T0) for v in everything] == [3, 2, 1, 0, -7200]  # newest first
    assert {v.severity for v in store.query(AlertQuery(min_severity="high"))} == {
        "high",
        "critical",
    }
    assert [v.rule_id for v in store.query(AlertQuery(technique="T1046"))] == ["port_scan"]
    # a technique finds its sub-techniques
    assert [v.rule_id for v in store.query(AlertQuery(technique="T1595"))] == ["port_scan"]
    assert store.query(AlertQuery(technique="T1595.002")) == []
    assert len(store.query(AlertQuery(src_ip="10.0.0.5"))) == 3
    assert [v.label for v in store.query(AlertQuery(since=T0 - 60))] == [
        "anomalous",
        "suspicious",
        "malicious",
        "malicious",
    ]
    assert len(store.query(AlertQuery(until=T0))) == 1
    assert len(store.query(AlertQuery(limit=2))) == 2
    scan = store.query(AlertQuery(label="suspicious"))[0]
    assert scan.host == "198.51.100.3" and scan.src_ip == "198.51.100.3"
    assert scan.doc["threat"]["technique"]["subtechnique"]["id"] == ["T1595.001"]


def test_retention_by_age_uses_time_stored(tmp_path: Path) -> None:
    wall = Clock(1_800_000_000.0)
    old = StoreSink(
        StoreConfig(retention_days=1),
        data_dir=tmp_path,
        dead_letter=DeadLetterFile(tmp_path / "d"),
        wall_clock=wall,
    )
    old.write_batch(mixed_verdicts(6))
    old.close()
    wall.t += 86400 * 0.5
    store = VerdictStore(tmp_path, wall_clock=wall)
    store.insert([scan_verdict(50)], [encode(scan_verdict(50))])
    assert store.prune(StoreConfig(retention_days=1)) == 0  # packet times are years old: kept
    wall.t += 86400 * 0.6
    assert store.prune(StoreConfig(retention_days=1)) == 6
    assert store.count() == 1
    assert store.query(AlertQuery(technique="T1046"))[0].rule_id == "port_scan"
    db = sqlite3.connect(tmp_path / "shrike.db")
    assert db.execute("SELECT COUNT(*) FROM verdict_techniques").fetchone()[0] == 2


def test_retention_by_size_deletes_oldest(tmp_path: Path) -> None:
    with _sink(tmp_path, retention_days=0) as sink:
        sink.write_batch(mixed_verdicts(300))
    store = VerdictStore(tmp_path)
    total = store.stored_bytes()
    assert total > 100_000
    limit_mb = total / 2 / (1024 * 1024)
    deleted = store.prune(StoreConfig(retention_days=0, retention_mb=limit_mb))
    assert 150 <= deleted < 300
    assert store.stored_bytes() <= total / 2
    remaining = store.query(AlertQuery(limit=1000))
    assert len(remaining) == 300 - deleted
    assert min(v.ts for v in remaining) == T0 + deleted  # the oldest went first


def test_a_store_that_refuses_dead_letters_the_batch(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    sleeps: list[float] = []
    sink._sleep = sleeps.append

    def refuse(*_a: object) -> int:
        raise VerdictStoreError(str(sink.path), "cannot write verdicts: database or disk is full")

    sink.store.insert = refuse  # type: ignore[method-assign]
    sink.write_batch(mixed_verdicts(3))
    sink.flush()
    assert sink.stats.dead_lettered == 3 and sink.stats.delivered == 0
    assert len(sleeps) == 3
    letters = list(read_dead_letters(tmp_path / "dead.ndjson"))
    assert [d.target for d in letters] == ["store"] * 3
    assert "disk is full" in letters[0].error
    assert letters[0].document["shrike"]["label"] == "malicious"
    assert sink.dead_letter_files == (tmp_path / "dead.ndjson",)
    sink.close()


def test_unwritable_store_is_a_located_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(VerdictStoreError, match=str(blocker)):
        VerdictStore(blocker / "sub")


def test_open_sink_defaults_to_the_store(tmp_path: Path) -> None:
    sink = open_sink(OutputConfig(), data_dir=tmp_path, environ={})
    assert isinstance(sink, StoreSink)
    assert sink.dead_letter_files == ()
    sink.close()


def test_output_config_from_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "output:\n  sink: store\n  home_networks: [10.0.0.0/8]\n"
        "  store:\n    retention_days: 7\n  elasticsearch:\n    batch_docs: 50\n"
    )
    out = load_config(p).output
    assert out.sink == "store" and out.home_networks == ("10.0.0.0/8",)
    assert out.store.retention_days == 7.0 and out.elasticsearch.batch_docs == 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("output:\n  sinks: store\n", "output.sinks: unknown setting (did you mean sink?)"),
        ("output:\n  sink: kafka\n", "output: sink must be one of auto, store"),
        (
            "output:\n  store:\n    retention_days: soon\n",
            "output.store.retention_days: expected a number",
        ),
        (
            "output:\n  elasticsearch:\n    url: localhost:9200\n",
            "url must look like https://host:9200",
        ),
        ("output:\n  elasticsearch:\n    verify_certs: 1\n", "expected true or false"),
        ("output:\n  elasticsearch:\n    username: u\n", "username and password go together"),
        ("output:\n  home_networks: [10.0.0.0/40]\n", "is not an address or CIDR"),
        ("output:\n  elasticsearch: 3\n", "output.elasticsearch: must be a mapping"),
    ],
)
def test_bad_output_settings_are_located(tmp_path: Path, text: str, expected: str) -> None:
    from engine.config import ConfigError

    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(p) in str(info.value) and expected in str(info.value)


def test_secrets_stay_out_of_repr_and_messages(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "output:\n  elasticsearch:\n    url: https://elastic:hunter2@es.example:9200\n"
        "    api_key: c2VjcmV0LWtleQ==\n"
    )
    es = load_config(p).output.elasticsearch
    assert "c2VjcmV0LWtleQ" not in repr(load_config(p))
    assert es.where == "https://es.example:9200"
    env = es.with_environment({"SHRIKE_ES_PASSWORD": "pw", "SHRIKE_ES_USERNAME": "u"})
    assert env.password == "pw" and "pw" not in repr(env)


def test_alerts_cli_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _sink(tmp_path) as sink:
        sink.write_batch([signature_verdict(0), scan_verdict(1), anomaly_verdict(2)])
    assert main(["alerts", "--data-dir", str(tmp_path), "--severity", "medium"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["time", "(UTC)", "severity", "label"]
    assert "9000002 Windows executable fetched over plain" in out[2]
    assert "10.0.0.5:40000" in out[2] and "192.0.2.80:80" in out[2]
    assert out[-1] == "2 verdicts"
    assert (
        main(["alerts", "--data-dir", str(tmp_path), "--technique", "t1046", "--format", "json"])
        == 0
    )
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["rule"]["id"] for d in docs] == ["port_scan"]
    assert main(["alerts", "--data-dir", str(tmp_path), "--src", "10.0.0.5", "--since", "1h"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 verdicts"  # packet times are from 2024
    assert main(["alerts", "--data-dir", str(tmp_path), "--since", "2024-05-01T11:00:00Z"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 verdicts"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is neither a duration"),
        (["--src", "10.0.0.300"], "--src: '10.0.0.300' is not an IP address"),
        (["--technique", "TA0007"], "--technique: 'TA0007' is not a technique id"),
        (["--limit", "0"], "--limit: must be at least 1"),
    ],
)
def test_alerts_cli_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["alerts", "--data-dir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_replace_keeps_store_config_frozen() -> None:
    with pytest.raises(ValueError, match="batch_verdicts"):
        replace(StoreConfig(), batch_verdicts=0)


def test_every_output_setting_is_documented_in_the_shipped_config() -> None:
    import dataclasses

    from engine.config import DEFAULT_CONFIG
    from engine.sinks.config import ElasticsearchConfig

    text = DEFAULT_CONFIG.read_text()
    for cls, indent in ((OutputConfig, "  "), (StoreConfig, "    "), (ElasticsearchConfig, "    ")):
        for f in dataclasses.fields(cls):
            assert f"\n{indent}{f.name}:" in text, f"{cls.__name__}.{f.name} is not in shrike.yaml"

"""Literal databases: libhs through ctypes and the `hyperscan` package give the same hits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from engine.match import literals
from engine.match.literals import LiteralScanError, compile_literals


def _escape(pattern: bytes) -> bytes:
    return "".join(f"\\x{b:02x}" for b in pattern).encode("ascii")


PATTERNS = [b"GET ", b"host:", b"\x00\x01\x00", b"abab"]
CASELESS = [False, True, False, False]
IDS = [0, 1, 5, 7]  # ids need not be dense


def _engines() -> list[str]:
    if literals._libhs() is None:
        pytest.skip("libhs is not installed (apt-get install libhyperscan5)")
    return ["libhs", "binding"]


def _database(engine: str) -> literals.LiteralDatabase:
    return compile_literals([_escape(p) for p in PATTERNS], IDS, CASELESS, engine)  # type: ignore[arg-type]


def _buffer(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


def test_every_occurrence_with_its_end_relative_to_the_start() -> None:
    data = _buffer(b"xxGET / HTTP/1.1\r\nHOST: a\r\n\x00\x01\x00\x01\x00abababGET ")
    for engine in _engines():
        db = _database(engine)
        assert db.engine == engine
        found = db.hits(data, 2, data.shape[0], 100)
        assert found.complete
        got = sorted(zip(found.ids.tolist(), found.ends.tolist(), strict=True))
        # "abab" overlaps itself twice in "ababab"; the trailing GET is seen too
        text = bytes(data[2:])
        host, zeros, abab = text.index(b"HOST:"), text.index(b"\x00\x01\x00"), text.index(b"abab")
        expected = [(0, 4), (0, len(text)), (1, host + 5), (5, zeros + 3), (5, zeros + 5)]
        expected += [(7, abab + 4), (7, abab + 6)]
        assert got == sorted(expected), engine


def test_a_scan_stops_at_its_budget_and_keeps_what_it_found() -> None:
    data = _buffer(b"abababababababab")  # "abab" ends at 4, 6, ..., 16: seven hits
    for engine in _engines():
        db = _database(engine)
        found = db.hits(data, 0, data.shape[0], 3)
        assert not found.complete, engine
        assert found.ends.tolist() == [4, 6, 8], engine
        whole = db.hits(data, 0, data.shape[0], 7 + 1)
        assert whole.complete and whole.ends.tolist() == [4, 6, 8, 10, 12, 14, 16], engine


def test_first_hits_report_each_pattern_once_per_buffer() -> None:
    buffers = [b"abababab GET GET ", b"nothing here", b"host: HoSt: abab"]
    data = _buffer(b"".join(buffers))
    lens = np.array([len(b) for b in buffers], dtype=np.int64)
    cstart = np.concatenate([[0], np.cumsum(lens[:-1])]).astype(np.int64)
    for engine in _engines():
        db = _database(engine)
        segs, ids = db.first_hits(data, cstart, lens, 0, 3)
        assert sorted(zip(segs.tolist(), ids.tolist(), strict=True)) == [
            (0, 0),
            (0, 7),
            (2, 1),
            (2, 7),
        ], engine
        # a range of buffers: only those are scanned
        segs, ids = db.first_hits(data, cstart, lens, 2, 3)
        assert sorted(segs.tolist()) == [2, 2], engine


def test_many_distinct_first_hits_outgrow_the_first_guess() -> None:
    # 200 distinct patterns all in one buffer: more than the 64 per buffer first allowed
    words = [f"w{i:03d}".encode() for i in range(200)]
    data = _buffer(b" ".join(words))
    for engine in _engines():
        db = compile_literals([_escape(w) for w in words], list(range(200)), [False] * 200, engine)  # type: ignore[arg-type]
        segs, ids = db.first_hits(
            data, np.array([0], np.int64), np.array([data.shape[0]], np.int64), 0, 1
        )
        assert sorted(ids.tolist()) == list(range(200)), engine
        assert set(segs.tolist()) == {0}


def test_a_pattern_hyperscan_rejects_is_a_clear_error() -> None:
    for engine in _engines():
        with pytest.raises(LiteralScanError, match="Missing close parenthesis") as raised:
            compile_literals([b"ok", b"(unclosed"], [0, 3], [False, False], engine)  # type: ignore[arg-type]
        if engine == "libhs":  # only libhs says which pattern
            assert "pattern 3: b'(unclosed'" in str(raised.value)


def test_without_libhs_the_package_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(literals, "_LOADED", [None])
    db = compile_literals([_escape(b"GET ")], [0], [False])
    assert db.engine == "binding"
    found = db.hits(_buffer(b"GET GET "), 0, 8, 10)
    assert found.ids.tolist() == [0, 0] and found.ends.tolist() == [4, 8]


def _hits(db: literals.LiteralDatabase) -> list[tuple[int, int]]:
    data = _buffer(b"xxGET / HTTP/1.1\r\nHOST: a\r\n\x00\x01\x00\x01\x00abababGET ")
    found = db.hits(data, 0, data.shape[0], 100)
    return list(zip(found.ids.tolist(), found.ends.tolist(), strict=True))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty database cache of the test's own."""
    _engines()
    monkeypatch.setenv(literals.CACHE_ENV, str(tmp_path))
    return tmp_path


def test_a_compiled_database_is_loaded_from_the_cache_next_time(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _hits(_database("libhs"))
    assert len(list(cache.glob("*.hsdb"))) == 2  # every occurrence, and once per scan

    def refuse(*_args: object) -> None:
        raise AssertionError("compiled although cached")

    with monkeypatch.context() as m:
        m.setattr(literals._LibhsDatabase, "_compile", refuse)
        assert _hits(_database("libhs")) == expected
        # another flag is another database
        with pytest.raises(AssertionError, match="compiled although cached"):
            compile_literals([_escape(p) for p in PATTERNS], IDS, [True] * 4, "libhs")


def test_a_damaged_cache_file_is_compiled_afresh(cache: Path) -> None:
    expected = _hits(_database("libhs"))
    files = sorted(cache.glob("*.hsdb"))
    good = [f.read_bytes() for f in files]
    for f in files:
        f.write_bytes(b"not a database")
    assert _hits(_database("libhs")) == expected
    assert [f.read_bytes() for f in files] == good  # replaced by the fresh compile
    assert not list(cache.glob("*.tmp"))


def test_the_cache_is_off_when_set_empty_and_prunes_unused_files(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setenv(literals.CACHE_ENV, "")
        assert literals.cache_dir() is None
        _database("libhs")
    assert not list(cache.iterdir())
    stale = cache / ("0" * 64 + ".hsdb")
    stale.write_bytes(b"old")
    old = time.time() - literals.CACHE_MAX_AGE - 60
    os.utime(stale, (old, old))
    _database("libhs")
    assert not stale.exists()
    assert len(list(cache.glob("*.hsdb"))) == 2


def test_an_unwritable_cache_is_reported_once_and_databases_still_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _engines()
    blocked = tmp_path / "a file"
    blocked.write_bytes(b"")
    monkeypatch.setenv(literals.CACHE_ENV, str(blocked / "cache"))
    monkeypatch.setattr(literals, "_UNWRITABLE", set())
    with caplog.at_level("WARNING", logger=literals.__name__):
        first = _hits(_database("libhs"))
        assert _hits(_database("libhs")) == first
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and str(blocked / "cache") in said[0], said

"""Hyperscan databases of rule literals, scanned into arrays of hits.

The matcher keeps one per buffer of fast patterns and one of the other literals
packet rules need. A scan reports every occurrence of every pattern. With libhs
loaded from the system, the scan runs through `hs_scan` with a compiled (numba
`cfunc`) callback that writes each hit into a numpy array, so no Python runs per
hit; a prefilter scan of real traffic yields a few hits per payload, and calling
back into Python for each was a tenth of the matcher's time. Without a system
libhs the `hyperscan` package's bundled library does the same work with a Python
callback. Both give the same hits (`tests/engine/match/test_literals.py` compares them).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import tempfile
import time
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import hyperscan
import numpy as np
from numba import carray, cfunc, types

from rules.lint.libhs import HsCompileError, LibhsUnavailable, load_libhs

_MODE_BLOCK = 1
_FLAG_CASELESS = 1
_FLAG_SINGLEMATCH = 8
_SUCCESS = 0
_SCAN_TERMINATED = -3

Engine = Literal["libhs", "binding"]

log = logging.getLogger(__name__)


class LiteralScanError(RuntimeError):
    """Hyperscan failed to compile or scan; the message gives libhs's reason."""


@dataclass(frozen=True, slots=True)
class Hits:
    """Pattern ids and the offsets just past each occurrence, in the order found.

    `complete` is False when the scan stopped at its budget: the hits are then
    those found before it stopped.
    """

    ids: np.ndarray
    ends: np.ndarray
    complete: bool


class LiteralDatabase(ABC):
    """Literals (escaped for Hyperscan, each with an id and a caseless flag) compiled
    twice: once reporting every occurrence, once reporting each pattern once per scan
    (unless made with `single=False`, which leaves `first_hits` out)."""

    engine: Engine

    @abstractmethod
    def hits(self, data: np.ndarray, start: int, end: int, budget: int) -> Hits:
        """Every occurrence in `data[start:end]`, stopping after `budget` hits.
        Offsets are relative to `start`."""

    @abstractmethod
    def first_hits(
        self, data: np.ndarray, cstart: np.ndarray, lens: np.ndarray, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, pattern id) for each pattern found in buffers `lo` to `hi - 1` of
        `data` (buffer `i` is `data[cstart[i] : cstart[i] + lens[i]]`), once per buffer."""


def compile_literals(
    expressions: list[bytes],
    ids: list[int],
    caseless: list[bool],
    engine: Engine | None = None,
    *,
    single: bool = True,
) -> LiteralDatabase:
    """The database for `expressions`, through the system libhs when it loads (or
    `engine` asks for it), else through the `hyperscan` package; without `single`,
    only the database reporting every occurrence is compiled."""
    if engine is None:
        engine = "libhs" if _libhs() is not None else "binding"
    if engine == "libhs":
        return _LibhsDatabase(expressions, ids, caseless, single)
    return _BindingDatabase(expressions, ids, caseless, single)


# ---- the system libhs, called through ctypes --------------------------------------


class _Libhs:
    def __init__(self, library: ctypes.CDLL) -> None:
        vp = ctypes.c_void_p
        uint = ctypes.c_uint
        error_p = ctypes.POINTER(HsCompileError)
        self.compile = library.hs_compile_multi
        self.compile.argtypes = (
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(uint),
            ctypes.POINTER(uint),
            uint,
            uint,
            vp,
            ctypes.POINTER(vp),
            ctypes.POINTER(error_p),
        )
        self.compile.restype = ctypes.c_int
        self.free_error = library.hs_free_compile_error
        self.free_error.argtypes = (error_p,)
        self.free_error.restype = ctypes.c_int
        self.alloc_scratch = library.hs_alloc_scratch
        self.alloc_scratch.argtypes = (vp, ctypes.POINTER(vp))
        self.alloc_scratch.restype = ctypes.c_int
        self.free_scratch = library.hs_free_scratch
        self.free_scratch.argtypes = (vp,)
        self.free_scratch.restype = ctypes.c_int
        self.free_database = library.hs_free_database
        self.free_database.argtypes = (vp,)
        self.free_database.restype = ctypes.c_int
        self.scan = library.hs_scan
        self.scan.argtypes = (vp, vp, uint, uint, vp, vp, vp)
        self.scan.restype = ctypes.c_int
        self.serialize = library.hs_serialize_database
        self.serialize.argtypes = (
            vp,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        )
        self.serialize.restype = ctypes.c_int
        self.deserialize = library.hs_deserialize_database
        self.deserialize.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(vp))
        self.deserialize.restype = ctypes.c_int
        version = library.hs_version
        version.restype = ctypes.c_char_p
        self.version: bytes = version() or b""
        # hs_serialize_database allocates with the C library's malloc
        self.free = ctypes.CDLL(None).free
        self.free.argtypes = (vp,)
        self.free.restype = None


_LOADED: list[_Libhs | None] = []


def _libhs() -> _Libhs | None:
    if not _LOADED:
        try:
            _LOADED.append(_Libhs(load_libhs()))
        except (LibhsUnavailable, AttributeError):
            _LOADED.append(None)
    return _LOADED[0]


# hs_scan's match_event_handler: (id, from, to, flags, context) -> nonzero to stop
_ON_MATCH = types.intc(types.uintc, types.ulonglong, types.ulonglong, types.uintc, types.voidptr)


# The hit buffer a scan writes into: [count, capacity, ids[capacity], ends[capacity]].
# Returning 1 stops the scan (hs_scan then returns HS_SCAN_TERMINATED).
@cfunc(_ON_MATCH, cache=True)
def _record_hit(pattern, _from, to, _flags, context):
    head = carray(context, 2, dtype=np.int64)
    n = head[0]
    capacity = head[1]
    buffer = carray(context, 2 + 2 * capacity, dtype=np.int64)
    buffer[2 + n] = pattern
    buffer[2 + capacity + n] = to
    n += 1
    head[0] = n
    return 1 if n >= capacity else 0


# Single-match scans of many buffers: [count, capacity, current buffer, buffers[capacity], ids[capacity]]
@cfunc(_ON_MATCH, cache=True)
def _record_first(pattern, _from, _to, _flags, context):
    head = carray(context, 3, dtype=np.int64)
    n = head[0]
    capacity = head[1]
    buffer = carray(context, 3 + 2 * capacity, dtype=np.int64)
    if n >= capacity:
        return 1
    buffer[3 + n] = head[2]
    buffer[3 + capacity + n] = pattern
    head[0] = n + 1
    return 0


#: Where compiled databases are kept between runs: `SHRIKE_HS_CACHE` (empty: keep
#: none), else `$XDG_CACHE_HOME/shrike/hyperscan` (`~/.cache/...`).
CACHE_ENV = "SHRIKE_HS_CACHE"
#: Cached databases unused for this long are removed when another is stored.
CACHE_MAX_AGE = 30 * 86400


def cache_dir() -> Path | None:
    """The database cache's folder, None when turned off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shrike" / "hyperscan"


@dataclass(frozen=True, slots=True)
class _DatabaseCache:
    """One database's place in the cache, named by a hash of everything that makes it:
    libhs's version, the mode, and each pattern's expression, id and flags. libhs
    refuses a database built for another version or CPU (`hs_deserialize_database`
    checks both); any file it refuses, or that cannot be read, is compiled afresh and
    replaced. Compiling a ruleset's databases is most of a second for the Snort 3
    community rules; loading them, milliseconds (as Suricata's `sgh-mpm-caching`)."""

    lib: _Libhs
    path: Path

    @classmethod
    def open(
        cls, lib: _Libhs, expressions: list[bytes], ids: list[int], flags: list[int]
    ) -> _DatabaseCache | None:
        folder = cache_dir()
        if folder is None:
            return None
        h = hashlib.sha256()
        h.update(lib.version + b"\0" + str(_MODE_BLOCK).encode())
        for expression, pid, flag in zip(expressions, ids, flags, strict=True):
            h.update(b"\0%d\0%d\0%d\0" % (pid, flag, len(expression)) + expression)
        return cls(lib, folder / f"{h.hexdigest()}.hsdb")

    def load(self) -> ctypes.c_void_p | None:
        try:
            blob = self.path.read_bytes()
            os.utime(self.path)  # in use: not to be pruned
        except OSError:
            return None
        database = ctypes.c_void_p()
        if self.lib.deserialize(blob, len(blob), ctypes.byref(database)) != _SUCCESS:
            return None
        return database

    def store(self, database: ctypes.c_void_p) -> None:
        """Write the database. A cache folder that cannot be written is said once, on
        the log, and the run goes on compiling."""
        blob = ctypes.c_void_p()
        size = ctypes.c_size_t()
        if self.lib.serialize(database, ctypes.byref(blob), ctypes.byref(size)) != _SUCCESS:
            return
        try:
            data = ctypes.string_at(blob, size.value)
        finally:
            self.lib.free(blob)
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, self.path)  # whole or not at all, for concurrent runs
            temporary = None
            _prune(self.path.parent)
        except OSError as error:
            if self.path.parent not in _UNWRITABLE:
                _UNWRITABLE.add(self.path.parent)
                log.warning(
                    "Hyperscan database cache %s cannot be written (%s): compiling "
                    "every run; set %s to another folder, or empty to keep none",
                    self.path.parent,
                    error,
                    CACHE_ENV,
                )
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)


#: Cache folders already reported unwritable.
_UNWRITABLE: set[Path] = set()


def _prune(folder: Path) -> None:
    """Remove cached databases not used for `CACHE_MAX_AGE`."""
    old = time.time() - CACHE_MAX_AGE
    for path in folder.glob("*.hsdb"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < old:
                path.unlink()


def _release(lib: _Libhs, handles: list[tuple[int, int]]) -> None:
    for database, scratch in handles:
        lib.free_scratch(scratch)
        lib.free_database(database)


class _LibhsDatabase(LiteralDatabase):
    engine: Engine = "libhs"

    def __init__(
        self, expressions: list[bytes], ids: list[int], caseless: list[bool], single: bool = True
    ) -> None:
        lib = _libhs()
        if lib is None:
            raise LiteralScanError("libhs cannot be loaded")
        self._lib = lib
        flags = [_FLAG_CASELESS if c else 0 for c in caseless]
        self._all, self._all_scratch = self._build(expressions, ids, flags)
        handles = [(self._all, self._all_scratch)]
        self._single = self._single_scratch = 0
        if single:
            try:
                once = [f | _FLAG_SINGLEMATCH for f in flags]
                self._single, self._single_scratch = self._build(expressions, ids, once)
            except LiteralScanError:
                _release(lib, handles)
                raise
            handles.append((self._single, self._single_scratch))
        weakref.finalize(self, _release, lib, handles)

    def _build(self, expressions: list[bytes], ids: list[int], flags: list[int]) -> tuple[int, int]:
        lib = self._lib
        cache = _DatabaseCache.open(lib, expressions, ids, flags)
        database = cache.load() if cache is not None else None
        if database is None:
            database = self._compile(expressions, ids, flags)
            if cache is not None:
                cache.store(database)
        scratch = ctypes.c_void_p()
        status = lib.alloc_scratch(database, ctypes.byref(scratch))
        if status != _SUCCESS:
            lib.free_database(database)
            raise LiteralScanError(f"hs_alloc_scratch failed with status {status}")
        return int(database.value or 0), int(scratch.value or 0)

    def _compile(
        self, expressions: list[bytes], ids: list[int], flags: list[int]
    ) -> ctypes.c_void_p:
        lib = self._lib
        n = len(expressions)
        database = ctypes.c_void_p()
        error = ctypes.POINTER(HsCompileError)()
        status = lib.compile(
            (ctypes.c_char_p * n)(*expressions),
            (ctypes.c_uint * n)(*flags),
            (ctypes.c_uint * n)(*ids),
            n,
            _MODE_BLOCK,
            None,
            ctypes.byref(database),
            ctypes.byref(error),
        )
        if status != _SUCCESS:
            reason = f"status {status}"
            if error:
                message = error.contents.message
                where = error.contents.expression
                reason = (message or b"").decode("utf-8", "replace")
                if where >= 0:
                    reason += f" (pattern {ids[where]}: {expressions[where]!r})"
                lib.free_error(error)
            raise LiteralScanError(f"hs_compile_multi failed: {reason}")
        return database

    def hits(self, data: np.ndarray, start: int, end: int, budget: int) -> Hits:
        out = np.empty(2 + 2 * budget, dtype=np.int64)
        out[0] = 0
        out[1] = budget
        status = self._lib.scan(
            self._all,
            data.ctypes.data + start,
            end - start,
            0,
            self._all_scratch,
            _record_hit.address,
            out.ctypes.data,
        )
        if status not in (_SUCCESS, _SCAN_TERMINATED):
            raise LiteralScanError(f"hs_scan failed with status {status}")
        n = int(out[0])
        return Hits(out[2 : 2 + n], out[2 + budget : 2 + budget + n], status == _SUCCESS)

    def first_hits(
        self, data: np.ndarray, cstart: np.ndarray, lens: np.ndarray, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self._single:
            raise LiteralScanError("compiled without its single-match database")
        capacity = 64 * (hi - lo) + 64
        while True:
            out = np.empty(3 + 2 * capacity, dtype=np.int64)
            out[0] = 0
            out[1] = capacity
            scan = self._lib.scan
            base = data.ctypes.data
            database, scratch = self._single, self._single_scratch
            callback, context = _record_first.address, out.ctypes.data
            for i in range(lo, hi):
                out[2] = i
                status = scan(
                    database, base + int(cstart[i]), int(lens[i]), 0, scratch, callback, context
                )
                if status == _SCAN_TERMINATED:
                    break
                if status != _SUCCESS:
                    raise LiteralScanError(f"hs_scan failed with status {status}")
            else:
                n = int(out[0])
                return out[3 : 3 + n], out[3 + capacity : 3 + capacity + n]
            capacity *= 4  # more distinct patterns than guessed: count again


# ---- the hyperscan package --------------------------------------------------------


class _BindingDatabase(LiteralDatabase):
    engine: Engine = "binding"

    def __init__(
        self, expressions: list[bytes], ids: list[int], caseless: list[bool], single: bool = True
    ) -> None:
        flags = [hyperscan.HS_FLAG_CASELESS if c else 0 for c in caseless]
        self._single: hyperscan.Database | None = None
        try:
            self._all = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._all.compile(expressions=expressions, ids=ids, elements=len(ids), flags=flags)
            if single:
                self._single = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                self._single.compile(
                    expressions=expressions,
                    ids=ids,
                    elements=len(ids),
                    flags=[f | hyperscan.HS_FLAG_SINGLEMATCH for f in flags],
                )
        except hyperscan.error as error:
            raise LiteralScanError(f"hyperscan compile failed: {error}") from error

    def hits(self, data: np.ndarray, start: int, end: int, budget: int) -> Hits:
        ids: list[int] = []
        ends: list[int] = []

        def on_match(pid: int, _from: int, to: int, _flags: int, _ctx: object) -> bool:
            ids.append(pid)
            ends.append(to)
            return len(ids) >= budget

        complete = True
        try:
            self._all.scan(_view(data, start, end), match_event_handler=on_match)
        except hyperscan.ScanTerminated:
            complete = False
        return Hits(np.array(ids, dtype=np.int64), np.array(ends, dtype=np.int64), complete)

    def first_hits(
        self, data: np.ndarray, cstart: np.ndarray, lens: np.ndarray, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray]:
        segs: list[int] = []
        ids: list[int] = []
        current = [0]

        def on_match(pid: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            segs.append(current[0])
            ids.append(pid)

        if self._single is None:
            raise LiteralScanError("compiled without its single-match database")
        scan = self._single.scan
        for i in range(lo, hi):
            s = int(cstart[i])
            current[0] = i
            scan(_view(data, s, s + int(lens[i])), match_event_handler=on_match)
        return np.array(segs, dtype=np.int64), np.array(ids, dtype=np.int64)


def _view(data: np.ndarray, start: int, end: int) -> bytes:
    # the package scans any buffer; its stubs name only str and bytes
    return cast(bytes, data.data[start:end])

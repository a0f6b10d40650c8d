"""The fast parser's tokenizer in C (`_tokenizer.c`), built on first use and cached.

Cutting a large file into tokens with the `_TOKEN` regex is about a quarter of
the fast parser's time, most of it Python work per match.  `_tokenizer.c`
makes the same cuts in one call.  It is compiled with the system C compiler
(`$CC`, else `cc`) into `$XDG_CACHE_HOME/shrike/` (default `~/.cache/shrike`)
under a name that hashes the source and the machine, and loaded with ctypes;
it needs no Python headers.

It is only an accelerator: `tokenizer()` returns None when there is no
compiler, the build fails, the cache is not writable, or
`SHRIKE_NO_C_TOKENIZER=1` is set, and the fast parser then keeps using the
regex, which gives the same tokens.  `status()` says which one runs and why.
"""

from __future__ import annotations

import array
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("_tokenizer.c")
DISABLE_ENV = "SHRIKE_NO_C_TOKENIZER"
_BUILD_SECONDS = 120


def _bind(function: Any, *argtypes: Any) -> Any:
    """`function` of the library, declared to take `argtypes` and return a C long."""
    function.argtypes = argtypes
    function.restype = ctypes.c_long
    return function


class NativeTokenizer:
    """The tokenizer's functions from a loaded library: tokens and line starts of ASCII text."""

    def __init__(self, library: ctypes.CDLL) -> None:
        text, pointer, size = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_long
        self._tokenize = _bind(
            library.shrike_tokenize, text, size, size, pointer, pointer, pointer, size
        )
        self._join = _bind(library.shrike_join_tokens, text, pointer, pointer, size, pointer)
        self._lines = _bind(library.shrike_line_starts, text, size, pointer)

    def tokens(self, data: bytes, start: int, end: int) -> tuple[bytes, list[int], list[str]]:
        """The tokens of data[start:end]: kind numbers (one byte each), starts and texts."""
        capacity = (end - start) // 4 + 64  # tokens and their blanks average far more than 4 bytes
        while True:
            kinds = bytearray(capacity)
            starts = array.array("i", bytes(4 * capacity))
            lengths = array.array("i", bytes(4 * capacity))
            count = self._tokenize(
                data,
                start,
                end,
                (ctypes.c_char * capacity).from_buffer(kinds),
                starts.buffer_info()[0],
                lengths.buffer_info()[0],
                capacity,
            )
            if count >= 0:
                break
            capacity = end - start + 1  # one token per character at most
        texts: list[str]
        if count == 0:
            texts = []
        elif b"\0" in data:  # a NUL in the text would split a token in two
            texts = [
                data[at : at + size].decode("ascii")
                for at, size in zip(starts[:count], lengths[:count], strict=True)
            ]
        else:
            joined = bytearray(sum(lengths[:count]) + count)
            size = self._join(
                data,
                starts.buffer_info()[0],
                lengths.buffer_info()[0],
                count,
                (ctypes.c_char * len(joined)).from_buffer(joined),
            )
            texts = joined[: size - 1].decode("ascii").split("\0")
        return bytes(kinds[:count]), starts[:count].tolist(), texts

    def line_starts(self, data: bytes) -> list[int]:
        """0 and the offset after each LF of `data`, then len(data) + 1."""
        starts = array.array("q", bytes(8 * (data.count(b"\n") + 1)))
        count = self._lines(data, len(data), starts.buffer_info()[0])
        return [*starts[:count].tolist(), len(data) + 1]


_LOCK = threading.Lock()
_loaded: NativeTokenizer | str | None = None  # the tokenizer, or why there is none


def tokenizer() -> NativeTokenizer | None:
    """The process's C tokenizer, or None (see `status`); built or loaded once."""
    global _loaded
    with _LOCK:
        if _loaded is None:
            try:
                _loaded = _load()
            except _Unavailable as why:
                _loaded = str(why)
        return _loaded if isinstance(_loaded, NativeTokenizer) else None


def status() -> str:
    """Which tokenizer the fast parser uses, and why not the C one when it does not."""
    found = tokenizer()
    if found is not None:
        return "C tokenizer"
    return f"regex tokenizer ({_loaded})"


class _Unavailable(Exception):
    pass


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shrike"


def library_path(source: Path = SOURCE) -> Path:
    """Where the compiled tokenizer for this source and machine is cached."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(f"\0{sys.platform}\0{platform.machine()}".encode())
    return _cache_root() / f"tokenizer-{digest.hexdigest()[:16]}.so"


def _load() -> NativeTokenizer:
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        raise _Unavailable(f"{DISABLE_ENV} is set")
    path = library_path()
    if not path.is_file():
        build(path)
    try:
        return NativeTokenizer(ctypes.CDLL(str(path)))
    except (OSError, AttributeError) as error:
        raise _Unavailable(f"cannot load {path}: {error}") from error


def build(path: Path, source: Path = SOURCE) -> None:
    """Compile `source` into the shared library `path` (atomically: a temporary file, renamed)."""
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise _Unavailable(f"no C compiler ({compiler}) on PATH")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tokenizer-", suffix=".so")
        os.close(handle)
    except OSError as error:
        raise _Unavailable(f"cannot write {path.parent}: {error.strerror or error}") from error
    try:
        try:
            run = subprocess.run(
                [compiler, "-O2", "-shared", "-fPIC", "-o", temporary, str(source)],
                capture_output=True,
                text=True,
                timeout=_BUILD_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise _Unavailable(f"{compiler} failed to run: {error}") from error
        if run.returncode != 0:
            first = (run.stderr or run.stdout).strip().splitlines()[:1]
            raise _Unavailable(f"{compiler} failed: {first[0] if first else run.returncode}")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)

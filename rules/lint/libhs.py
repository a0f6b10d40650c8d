"""Asks libhs whether Hyperscan supports a regex, through `hs_expression_info`, without compiling it.

`hs_expression_info` parses and analyses a pattern the way `hs_compile` does before
it builds a database, and rejects the same constructs with the same messages
(back-references, look-behind, unsupported flags, ...) at a small fraction of the
cost of a compile.  The one thing it cannot see is a pattern whose automaton
comes out too large, which only the later compile stages measure: those come
from a group repeated many times (`(?:%\\d{2}|[^%&]){129}`), so a pattern with such
a repeat is still compiled to confirm.  Verdicts are cached per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from collections.abc import Callable

_LIBRARY_NAMES = ("libhs.so.5", "libhs.so", "libhs.dylib")
# A group followed by a bounded repeat of at least this count may unroll into more
# states than Hyperscan's compiler accepts; only a compile can tell.
_LARGE_GROUP_REPEAT = 8
_GROUP_REPEAT = re.compile(rb"\)\{(\d+)(?:,(\d*))?\}")


class LibhsUnavailable(RuntimeError):
    """libhs (or its `hs_expression_info`) cannot be loaded; the message says why."""


class _CompileError(ctypes.Structure):
    _fields_ = (("message", ctypes.c_char_p), ("expression", ctypes.c_int))


def _load_library() -> ctypes.CDLL:
    reasons = []
    names = list(_LIBRARY_NAMES)
    found = ctypes.util.find_library("hs")
    if found:
        names.append(found)
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as error:
            reasons.append(str(error))
    raise LibhsUnavailable("cannot load libhs: " + "; ".join(reasons))


class PatternAnalyser:
    """`hs_expression_info` from a loaded libhs, returning the compiler's message or None."""

    def __init__(self) -> None:
        library = _load_library()
        try:
            info = library.hs_expression_info
            free_error = library.hs_free_compile_error
        except AttributeError as error:
            raise LibhsUnavailable(f"libhs has no hs_expression_info: {error}") from error
        info.argtypes = (
            ctypes.c_char_p,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.POINTER(_CompileError)),
        )
        info.restype = ctypes.c_int
        free_error.argtypes = (ctypes.POINTER(_CompileError),)
        free_error.restype = ctypes.c_int
        # hs_expr_info_t comes from the misc allocator, malloc unless an
        # application sets another one (Shrike never does).
        libc_free = ctypes.CDLL(None).free
        libc_free.argtypes = (ctypes.c_void_p,)
        libc_free.restype = None
        self._info = info
        self._free_error = free_error
        self._free = libc_free

    def error(self, pattern: bytes, flags: int) -> str | None:
        """The message `hs_compile` would give for `pattern` (short of size limits), or None."""
        info = ctypes.c_void_p()
        error = ctypes.POINTER(_CompileError)()
        status = self._info(pattern, flags, ctypes.byref(info), ctypes.byref(error))
        if status == 0:
            self._free(info)
            return None
        if not error:
            return f"hs_expression_info failed with status {status}"
        message = error.contents.message
        self._free_error(error)
        return message.decode("utf-8", "replace") if message else f"error status {status}"


_analyser: PatternAnalyser | LibhsUnavailable | None = None
_LOCK = threading.Lock()


def analyser() -> PatternAnalyser | LibhsUnavailable:
    """The process's analyser, or why libhs cannot be used (loaded once per process)."""
    global _analyser
    with _LOCK:
        if _analyser is None:
            try:
                _analyser = PatternAnalyser()
            except LibhsUnavailable as error:
                _analyser = error
        return _analyser


def hyperscan_error(
    pattern: bytes, flags: int, compile_error: Callable[[bytes, int], str | None]
) -> str | None:
    """Why Hyperscan rejects `pattern` with `flags`, or None when it compiles.

    `compile_error` compiles one pattern and gives the same kind of verdict; it is
    used when libhs cannot be loaded, for patterns with a NUL byte (a C string would
    end early), and to confirm patterns `hs_expression_info` cannot size.
    """
    key = (pattern, flags)
    if key in _VERDICTS:
        return _VERDICTS[key]
    verdict: str | None
    found = analyser()
    if isinstance(found, LibhsUnavailable) or b"\0" in pattern:
        verdict = compile_error(pattern, flags)
    else:
        verdict = found.error(pattern, flags)
        if verdict is None and _may_be_too_large(pattern):
            verdict = compile_error(pattern, flags)
    _VERDICTS[key] = verdict
    return verdict


def _may_be_too_large(pattern: bytes) -> bool:
    for match in _GROUP_REPEAT.finditer(pattern):
        low, high = match.group(1), match.group(2)
        if int(low) >= _LARGE_GROUP_REPEAT or (high and int(high) >= _LARGE_GROUP_REPEAT):
            return True
    return False


# (pattern, flags) -> verdict, shared by every lint run in the process: rulesets repeat
# regexes, and a verdict never changes for one libhs.
_VERDICTS: dict[tuple[bytes, int], str | None] = {}

"""Asks libhs whether Hyperscan supports a regex, through `hs_expression_info`, without compiling it.

`hs_expression_info` parses and analyses a pattern the way `hs_compile` does before
it builds a database, and rejects the same constructs with the same messages
(back-references, look-behind, unsupported flags, ...) at a small fraction of the
cost of a compile.  The one thing it cannot see is a pattern whose automaton
comes out too large, which only the later compile stages measure: those come
from a group repeated many times (`(?:%\\d{2}|[^%&]){129}`), so a pattern with such
a repeat is still compiled to confirm.  Verdicts are cached per process.

Most regexes in real rulesets need no asking at all: `plainly_supported` reads
the pattern in a few microseconds and clears one made only of constructs
Hyperscan accepts (a fifth of the cost of asking).
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


class HsCompileError(ctypes.Structure):
    """libhs's `hs_compile_error_t`: the message, and the failing expression's index (-1: none)."""

    _fields_ = (("message", ctypes.c_char_p), ("expression", ctypes.c_int))


def load_libhs() -> ctypes.CDLL:
    """The system's libhs, or LibhsUnavailable with every name tried and why it failed."""
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
        library = load_libhs()
        try:
            info = library.hs_expression_info
            free_error = library.hs_free_compile_error
        except AttributeError as error:
            raise LibhsUnavailable(f"libhs has no hs_expression_info: {error}") from error
        info.argtypes = (
            ctypes.c_char_p,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.POINTER(HsCompileError)),
        )
        info.restype = ctypes.c_int
        free_error.argtypes = (ctypes.POINTER(HsCompileError),)
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
        error = ctypes.POINTER(HsCompileError)()
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
    if b"\0" not in pattern and plainly_supported(pattern):
        verdict = None
    elif isinstance(found, LibhsUnavailable) or b"\0" in pattern:
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


# ---- patterns plain enough to need no asking ------------------------------------

# The pieces of a plain pattern, in the order they are tried.  Escapes: one
# character or class of characters (`\d`, `\.`, `\x41`).  Any other escaped
# letter or digit (word boundaries, which can make a pattern unsatisfiable,
# back-references, `\G`, `\K`, `\Q`, `\p`, octal, ...) is no piece, so the
# pattern goes to libhs.  A bracket class holds single
# bytes, escaped punctuation, `\xHH` and the class escapes, with ranges between
# single bytes; a `[` inside one (POSIX classes) is no piece.
_ESCAPE = rb"\\(?:x[0-9A-Fa-f]{2}|[dDwWsSnrt]|[^0-9A-Za-z\x80-\xff])"
_CLASS_ITEM = rb"(?:\\(?:x[0-9A-Fa-f]{2}|[dDwWsSnrt]|[^0-9A-Za-z\x80-\xff])|[^\\\]\[])"
_PIECE = re.compile(
    rb"(?P<literal>[^\\\[\](){}|*+?^$.]+)"
    rb"|(?P<escape>" + _ESCAPE + rb")"
    rb"|(?P<any>\.)"
    rb"|(?P<bracket>\[\^?+(?:\]" + _CLASS_ITEM + rb"*|" + _CLASS_ITEM + rb"+)\])"
    rb"|(?P<open>\((?:\?:)?)(?!\?)"
    rb"|(?P<close>\))"
    rb"|(?P<bar>\|)"
    rb"|(?P<repeat>(?:[*+?]|\{(?P<low>\d{1,2})(?:(?P<comma>,)(?P<high>\d{0,2}))?\})\??)"
    rb"(?![*+?{])"
    rb"|(?P<start>\^)"
    rb"|(?P<end>\$)",
)
_RANGE = re.compile(
    rb"(\\x[0-9A-Fa-f]{2}|\\[^0-9A-Za-z\x80-\xff]|[^\\])-(\\x[0-9A-Fa-f]{2}|\\[^0-9A-Za-z\x80-\xff]|[^\\\]])"
)
_CLASS_NEXT_TO_DASH = re.compile(rb"\\[dDwWsS]-[^\]]|-\\[dDwWsS]")
_MAX_PLAIN_REPEAT = 64


def plainly_supported(pattern: bytes) -> bool:
    """Whether `pattern` uses only constructs Hyperscan accepts and needs at
    least one byte to match, so it compiles without asking libhs.

    Literals, `.`, escapes of one character or class, bracket classes, capturing
    and `(?:` groups, alternation, `^` first and `$` last, and `*` `+` `?`
    `{n,m}` (lazy or not, bounds up to 64, a group repeated fewer than eight
    times).  Anything else (look-around, back-references, inline options,
    possessive or atomic forms, POSIX classes, a pattern that can match nothing)
    is left to libhs.  `tests/rules/test_lint_libhs.py` checks on every regex of
    the shared rulesets that Hyperscan compiles each pattern this accepts.
    """
    # One frame per open group: [least width of the alternatives closed so far
    # (None before the first `|`), width of the current alternative].
    frames: list[list[int | None]] = [[None, 0]]
    last = -1  # width of the last piece, which a repeat applies to (-1: none)
    last_group = False
    position = 0
    size = len(pattern)
    for match in _PIECE.finditer(pattern):
        if match.start() != position:
            return False  # something that is no piece
        position = match.end()
        kind = match.lastgroup
        frame = frames[-1]
        if kind == "literal":
            text = match.group()
            frame[1] += len(text)  # type: ignore[operator]
            last, last_group = 1, False
            continue
        if kind == "escape" or kind == "any":
            frame[1] += 1  # type: ignore[operator]
            last, last_group = 1, False
        elif kind == "bracket":
            body = match.group()
            if body[1:2] in (b":", b".", b"=") or body[1:3] in (b"^:", b"^.", b"^="):
                return False  # `[:...]` reads as a POSIX class out of place
            if _CLASS_NEXT_TO_DASH.search(body):
                return False  # `[\d-z]`: a range or a literal dash, as versions differ
            for low, high in _RANGE.findall(body[1:-1]):
                if _class_byte(high) < _class_byte(low):
                    return False
            frame[1] += 1  # type: ignore[operator]
            last, last_group = 1, False
        elif kind == "open":
            frames.append([None, 0])
            last = -1
        elif kind == "close":
            if len(frames) == 1:
                return False
            frames.pop()
            least = _least(frame)
            frames[-1][1] += least  # type: ignore[operator]
            last, last_group = least, True
        elif kind == "bar":
            frame[0] = _least(frame)
            frame[1] = 0
            last = -1
        elif kind == "repeat":
            if last < 0:
                return False  # nothing to repeat, or a repeated anchor
            low_text = match.group("low")
            low = 1 if low_text is None and match.group()[0] == 0x2B else 0
            if low_text is not None:
                low = int(low_text)
                high_text = match.group("high")
                high = int(high_text) if high_text else (None if match.group("comma") else low)
                if low > _MAX_PLAIN_REPEAT or (
                    high is not None and (high > _MAX_PLAIN_REPEAT or high < low or high == 0)
                ):
                    return False  # `{0}` and `{0,0}` are no repeat to Hyperscan
                if last_group and max(low, high or 0) >= _LARGE_GROUP_REPEAT:
                    return False  # may be too large: only a compile can tell
            frame[1] += last * (low - 1)  # type: ignore[operator]
            last = -1
        elif kind == "start":
            if match.start() != 0:
                return False
            last = -1
        else:  # end
            if match.end() != size:
                return False
            last = -1
    if position != size or len(frames) != 1:
        return False
    return _least(frames[0]) > 0


def _least(frame: list[int | None]) -> int:
    closed, current = frame
    assert current is not None
    return current if closed is None else min(closed, current)


def _class_byte(item: bytes) -> int:
    if item.startswith(b"\\x"):
        return int(item[2:], 16)
    return item[-1]


# (pattern, flags) -> verdict, shared by every lint run in the process: rulesets repeat
# regexes, and a verdict never changes for one libhs.
_VERDICTS: dict[tuple[bytes, int], str | None] = {}

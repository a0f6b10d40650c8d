"""A faster drop-in for Lark's contextual lexer, plugged in through Lark's `_plugins` hook.

It lexes with exactly the terminals, order and keyword rules of the per-state
lexers Lark builds from `grammar.lark`; what it saves is per-token Python
work: whitespace is skipped inside the same regex match, keyword retyping is a
dict lookup, and line/column come from counting newlines in the skipped text.
At the first character it cannot match it hands over to Lark's own lexer, so
every lexing error is raised by Lark exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from lark import Token
from lark.lexer import BasicLexer, ContextualLexer, LexerState, PatternStr, UnlessCallback


class _StateScanner:
    """One state's terminals as a single regex with the skippable whitespace as its prefix."""

    __slots__ = ("callbacks", "match", "newline_types", "retype")

    def __init__(self, lexer: BasicLexer, skip: str, skipped: frozenset[str]) -> None:
        scanner = lexer.scanner  # builds Lark's scanner and `lexer.callback`
        alternatives = "|".join(
            f"(?P<{t.name}>{t.pattern.to_regexp()})"
            for t in scanner.terminals
            if t.name not in skipped
        )
        self.match: Callable[..., re.Match[str] | None] = re.compile(
            f"(?:{skip})*+(?:{alternatives})", lexer.g_regex_flags
        ).match
        self.newline_types = lexer.newline_types
        # A keyword that a name-like terminal also matches is lexed as that
        # terminal, then retyped (Lark's UnlessCallback); a dict does the same.
        self.retype: dict[str, dict[str, str]] = {}
        self.callbacks: dict[str, Callable[[Token], Token]] = {}
        for name, callback in lexer.callback.items():
            words = _literal_words(callback)
            if words is not None:
                self.retype[name] = words
            else:
                self.callbacks[name] = callback


def _literal_words(callback: Any) -> dict[str, str] | None:
    if not isinstance(callback, UnlessCallback):
        return None
    words: dict[str, str] = {}
    for terminal in callback.scanner.terminals:
        pattern = terminal.pattern
        if not isinstance(pattern, PatternStr) or pattern.flags:
            return None
        words.setdefault(pattern.value, terminal.name)
    return words


def scan_token(
    scanner: _StateScanner, text: str, m: re.Match[str], pos: int, line: int, line_start: int
) -> tuple[Token, str, int, int, int]:
    """The token a scanner match at `pos` stands for, with the position and line after it.

    Returns (token, its type, next position, next line, start of that line). Shared
    by the lexer and the table driver, so both count lines and type keywords alike.
    """
    type_ = m.lastgroup
    assert type_ is not None
    start = m.start(type_)
    stop = m.end()
    if start != pos:  # skipped whitespace before the token
        newlines = text.count("\n", pos, start)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", pos, start) + 1
    value = m.group(type_)
    column = start - line_start + 1
    if type_ in scanner.newline_types and "\n" in value:
        end_line = line + value.count("\n")
        line_start = start + value.rindex("\n") + 1
    else:
        end_line = line
    words = scanner.retype.get(type_)
    if words is not None:
        type_ = words.get(value, type_)
    # What Token(...) does, without its two Python-level constructor calls.
    token = str.__new__(Token, value)
    token.type = type_
    token.value = value
    token.start_pos = start
    token.line = line
    token.column = column
    token.end_line = end_line
    token.end_column = stop - line_start + 1
    token.end_pos = stop
    callback = scanner.callbacks.get(type_)
    if callback is not None:
        token = callback(token)
    return token, type_, stop, end_line, line_start


class FastContextualLexer(ContextualLexer):
    """Lark's ContextualLexer with a quicker `lex` loop (same tokens, same errors)."""

    def __init__(self, conf: Any, states: dict[int, Any], always_accept: Any = ()) -> None:
        super().__init__(conf, states, always_accept)
        ignore = set(conf.ignore)
        # Only plain whitespace is folded into the token regex; ignored
        # terminals with callbacks (comments) stay alternatives of their own.
        skippable = [
            t
            for t in conf.terminals
            if t.name in ignore
            and t.name not in conf.callbacks
            and re.fullmatch(t.pattern.to_regexp(), " \t\n")
        ]
        self._skipped = frozenset(t.name for t in skippable)
        self._skip = "|".join(t.pattern.to_regexp() for t in skippable) or "(?!)"
        self._skip_only = re.compile(f"(?:{self._skip})*+").match
        self._ignore = frozenset(ignore)
        self._by_lexer: dict[int, _StateScanner] = {}
        self._scanners: dict[int, _StateScanner] = {}

    def _scanner(self, state: int) -> _StateScanner:
        lexer = self.lexers[state]
        scanner = self._by_lexer.get(id(lexer))
        if scanner is None:
            scanner = self._by_lexer[id(lexer)] = _StateScanner(
                lexer,  # type: ignore[arg-type]
                self._skip,
                self._skipped,
            )
        self._scanners[state] = scanner
        return scanner

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        text_slice = lexer_state.text
        text = text_slice.text
        end = text_slice.end
        ctr = lexer_state.line_ctr
        pos = ctr.char_pos
        line = ctr.line
        line_start = ctr.line_start_pos
        scanners = self._scanners
        ignore = self._ignore
        count = text.count
        rfind = text.rfind
        token: Token | None = None
        while pos < end:
            state = parser_state.position
            scanner = scanners.get(state) or self._scanner(state)
            m = scanner.match(text, pos, end)
            if m is None:
                skipped = self._skip_only(text, pos, end)
                if skipped is not None and skipped.end() == end:
                    newlines = count("\n", pos, end)
                    if newlines:
                        line += newlines
                        line_start = rfind("\n", pos, end) + 1
                    pos = end
                break
            token, type_, pos, line, line_start = scan_token(
                scanner, text, m, pos, line, line_start
            )
            if type_ in ignore:
                continue
            yield token
        # Hand the position back to Lark: at the end of the text this ends the
        # stream, at a character no terminal matches Lark raises its own error.
        ctr.char_pos = pos
        ctr.line = line
        ctr.line_start_pos = line_start
        ctr.column = pos - line_start + 1
        if token is not None:
            lexer_state.last_token = token
        if pos < end:
            yield from super().lex(lexer_state, parser_state)

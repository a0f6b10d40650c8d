"""A tight LALR loop over the tables and callbacks Lark built from `grammar.lark`, for clean text.

Lark's own loop feeds one token at a time through a generator, a method call
and per-reduction attribute lookups; for a file of thousands of rules that
bookkeeping costs as much as the parsing itself.  This loop lexes with the
same per-state scanners as `FastContextualLexer`, shifts and reduces with
Lark's parse table, and calls Lark's callbacks (so the in-parser transformer
builds the AST exactly as it does under `Lark.parse`).  It only handles the
happy path: at the first token the table has no action for, it gives up and
returns `FAILED`, and the caller re-parses with `Lark.parse`, whose errors
are the ones users see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lark import Lark
from lark.parsers.lalr_analysis import Shift

from rules._lexer import FastContextualLexer, scan_token

#: Returned by `TableDriver.parse` when the text needs Lark's own parser.
FAILED = object()

_Reduction = tuple[int, str, Callable[[list[Any]], Any]]


class TableDriver:
    """Runs Lark's LALR tables for one `Lark` instance built with `FastContextualLexer`."""

    def __init__(self, lark: Lark, start: str = "start") -> None:
        frontend = lark.parser
        parser = frontend.parser.parser  # lark.parsers.lalr_parser._Parser
        lexer = frontend.lexer
        if not isinstance(lexer, FastContextualLexer):
            raise TypeError("TableDriver needs Lark built with FastContextualLexer")
        table = parser.parse_table
        callbacks = parser.callbacks
        if any(isinstance(key, str) for key in callbacks):
            raise TypeError("TableDriver does not run terminal callbacks")
        self._start = table.start_states[start]
        self._end = table.end_states[start]
        self._lexer = lexer
        # The table with each action spelt out: (next state, None) to shift,
        # (None, (values popped, goto symbol, callback)) to reduce, so the loop
        # never hashes a Rule object (Rule.__hash__ is Python code).
        reductions: dict[int, _Reduction] = {}
        self._table: dict[Any, dict[str, tuple[Any, _Reduction | None]]] = {}
        for state, row in table.states.items():
            actions: dict[str, tuple[Any, _Reduction | None]] = {}
            for symbol, (action, arg) in row.items():
                if action is Shift:
                    actions[symbol] = (arg, None)
                    continue
                reduction = reductions.get(id(arg))
                if reduction is None:
                    reduction = (len(arg.expansion), arg.origin.name, callbacks[arg])
                    reductions[id(arg)] = reduction
                actions[symbol] = (None, reduction)
            self._table[state] = actions

    def parse(self, text: str) -> Any:
        """The value of the start rule for `text`, or `FAILED` if `text` does not parse cleanly."""
        table = self._table
        end_state = self._end
        lexer = self._lexer
        scanners = lexer._scanners
        ignore = lexer._ignore
        end = len(text)
        state_stack = [self._start]
        value_stack: list[Any] = []
        pos = 0
        line = 1
        line_start = 0
        while True:
            state = state_stack[-1]
            if pos < end:
                scanner = scanners.get(state) or lexer._scanner(state)
                m = scanner.match(text, pos, end)
                if m is None:
                    skipped = lexer._skip_only(text, pos, end)
                    if skipped is None or skipped.end() != end:
                        return FAILED
                    pos = end
                    continue
                token, type_, pos, line, line_start = scan_token(
                    scanner, text, m, pos, line, line_start
                )
                if type_ in ignore:
                    continue
                is_end = False
            else:
                type_ = "$END"
                is_end = True
            while True:
                entry = table[state_stack[-1]].get(type_)
                if entry is None:
                    return FAILED
                shift_to, reduction = entry
                if reduction is None:
                    if is_end:
                        return FAILED
                    state_stack.append(shift_to)
                    value_stack.append(token)
                    break
                size, origin, reduce = reduction
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value_stack.append(reduce(children))
                new_state = table[state_stack[-1]][origin][0]
                state_stack.append(new_state)
                if is_end and new_state == end_state:
                    return value_stack[-1]

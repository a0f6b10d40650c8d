"""The rule language's one exception tree: every error carries a source Span and renders like a compiler's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rules.ast import NO_SPAN, Span


class RuleError(ValueError):
    """A problem in rule text, located by `span`.

    `source_line` is the offending line of text (for the caret display), `hint`
    a suggestion for the common mistakes, `rule_id` the id of the enclosing rule
    when known.
    """

    def __init__(
        self,
        message: str,
        span: Span = NO_SPAN,
        *,
        hint: str | None = None,
        source_line: str | None = None,
        rule_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source_line = source_line
        self.rule_id = rule_id

    def __str__(self) -> str:
        rule = f" (rule {self.rule_id})" if self.rule_id is not None else ""
        return f"{self.span}: {self.message}{rule}"

    def render(self) -> str:
        """The multi-line form: location and message, the source line with a caret, the hint."""
        lines = [str(self)]
        if self.source_line is not None and self.span.column > 0:
            text = self.source_line.rstrip("\n").expandtabs(1)
            lines.append(f"    {text}")
            width = 1
            if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
                width = self.span.end_column - self.span.column
            lines.append("    " + " " * (self.span.column - 1) + "^" * width)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class RuleSyntaxError(RuleError):
    """The text does not follow the grammar (unexpected token or character)."""


class UnknownFieldError(RuleError):
    """A condition names a field that is not in the field catalog."""


class RuleValueError(RuleError):
    """Well-formed text with a value that cannot be right (port 70000, bad CIDR, unknown option)."""


class VariableError(RuleError):
    """A `$VARIABLE` is undefined, defined twice, or of the wrong kind."""


class IncludeError(RuleError):
    """An `include` cannot be read or includes itself."""


class RuleErrors(RuleError):
    """Several errors found in one pass (collect-errors mode); iterate to get them."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        first = errors[0] if errors else RuleError("no errors")
        super().__init__(
            f"{len(errors)} error(s); first: {first.message}",
            first.span,
            hint=first.hint,
            source_line=first.source_line,
            rule_id=first.rule_id,
        )
        self.errors: tuple[RuleError, ...] = tuple(errors)

    def __iter__(self) -> Iterator[RuleError]:
        return iter(self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)

"""Runs the lint checks over parsed rule files and applies configuration and suppressions.

The entry point takes parsed rules plus their source (`ParsedSource`), not file names, so
any front end (the `.shrike` parser here, a Snort `.rules` importer later) can feed it.
"""

from __future__ import annotations

import bisect
import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rules import ast
from rules._fast_gc import collector_paused
from rules.attack import AttackCatalog, load_catalog
from rules.errors import RuleError, RuleErrors
from rules.lint.check import Check, LintContext, LintedRule
from rules.lint.checks.style import UnknownSuppressionCheck
from rules.lint.checks.syntax import ParserErrorCheck, SyntaxErrorCheck, UnreadableFileCheck
from rules.lint.config import LintConfig, LintConfigError
from rules.lint.diagnostics import Diagnostic, LintInputError, LintReport, sorted_diagnostics
from rules.lint.registry import CheckRegistry, default_registry
from rules.lint.suppressions import SuppressionDirective, directives_above, find_directives

RULE_FILE_SUFFIXES = (".shrike",)


@dataclass(frozen=True)
class ParsedSource:
    """One source file after parsing: its statements, its parse errors and its text."""

    path: str
    text: str
    statements: tuple[ast.Statement, ...] = ()
    errors: tuple[RuleError, ...] = ()
    decode_error: UnicodeDecodeError | None = field(default=None, compare=False)
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def rules(self) -> tuple[ast.Rule, ...]:
        return tuple(s for s in self.statements if isinstance(s, ast.Rule))


def _flatten_errors(error: RuleError) -> list[RuleError]:
    if isinstance(error, RuleErrors):
        return [inner for e in error.errors for inner in _flatten_errors(e)]
    return [error]


def parse_shrike_source(path: str, text: str) -> ParsedSource:
    """Parses `.shrike` text, collecting every error instead of stopping at the first."""
    from rules import parse_collecting

    result = parse_collecting(text, path)
    statements: tuple[ast.Statement, ...] = tuple(result.file.statements)
    errors = tuple(e for error in result.errors for e in _flatten_errors(error))
    return ParsedSource(path=path, text=text, statements=statements, errors=errors)


def read_source(
    path: Path, parse: Callable[[str, str], ParsedSource] | None = None
) -> ParsedSource:
    """Reads and parses one file; a file that is not UTF-8 becomes a diagnostic, not a crash."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LintInputError(f"{path}: cannot read: {error.strerror or error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return ParsedSource(path=str(path), text="", decode_error=error, raw=data)
    return (parse or parse_shrike_source)(str(path), text)


def collect_rule_files(
    paths: Iterable[Path], suffixes: Sequence[str] = RULE_FILE_SUFFIXES
) -> list[Path]:
    """Files named on the command line, plus rule files found under named folders (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes))
        elif path.is_file():
            found.append(path)
        else:
            raise LintInputError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))


def _load_hyperscan() -> Any:
    try:
        return importlib.import_module("hyperscan")
    except ImportError:
        return None


def variables_from_file(path: Path) -> frozenset[str]:
    """Names a variables YAML defines (see config/variables.yaml); LintConfigError when unusable."""
    from rules.variables import load_variables

    try:
        table = load_variables(path)
    except RuleError as error:
        raise LintConfigError(f"variables-file: {error}") from error
    return frozenset(table.addresses) | frozenset(table.ports)


@dataclass(frozen=True)
class _RuleExtent:
    start: int
    end: int
    suppressed: frozenset[str]


class Linter:
    """Checks parsed sources against the enabled checks of a registry under one configuration."""

    def __init__(
        self,
        config: LintConfig | None = None,
        *,
        registry: CheckRegistry | None = None,
        catalog: AttackCatalog | None = None,
        hyperscan: Any = ...,
        predefined_variables: frozenset[str] | None = None,
    ) -> None:
        """`hyperscan` is the module PRF003 compiles regexes with: by default the installed
        one, if any; None skips that check. `predefined_variables` defaults to the names in
        the configuration's `variables-file`."""
        self.config = config or LintConfig()
        self.registry = registry or default_registry()
        self.registry.validate_config(self.config)
        self.catalog = catalog or load_catalog()
        self.hyperscan = _load_hyperscan() if hyperscan is ... else hyperscan
        if predefined_variables is None:
            file = self.config.variables_file
            predefined_variables = variables_from_file(file) if file is not None else frozenset()
        self.predefined_variables = predefined_variables

    def lint(self, sources: Sequence[ParsedSource]) -> LintReport:
        with collector_paused():
            return self._lint(sources)

    def _lint(self, sources: Sequence[ParsedSource]) -> LintReport:
        defined = set(self.config.variables) | set(self.predefined_variables)
        for source in sources:
            defined.update(
                s.name for s in source.statements if isinstance(s, ast.VariableDefinition)
            )
        context = LintContext(
            catalog=self.catalog,
            defined_variables=frozenset(defined),
            hyperscan=self.hyperscan,
        )
        enabled_by_path = {
            source.path: self.registry.enabled_codes(self.config, source.path) for source in sources
        }
        every_enabled = (
            frozenset().union(*enabled_by_path.values()) if enabled_by_path else frozenset()
        )
        checks: list[Check] = [c() for c in self.registry if c.code in every_enabled]
        notes = []
        runnable = []
        for check in checks:
            reason = check.available(context)
            if reason is None:
                runnable.append(check)
                remark = check.note(context)
                if remark is not None:
                    notes.append(remark)
            else:
                notes.append(reason)

        diagnostics: list[Diagnostic] = []
        linted_rules: list[LintedRule] = []
        lines_by_path: dict[str, list[str]] = {}
        for source in sources:
            lines = source.text.splitlines()
            lines_by_path[source.path] = lines
            diagnostics.extend(self._source_diagnostics(source, lines))
            linted_rules.extend(LintedRule.of_rules(source.path, source.rules, lines))

        rule_checks = [c for c in runnable if type(c).check_rule is not Check.check_rule]
        set_checks = [c for c in runnable if type(c).check_ruleset is not Check.check_ruleset]
        statement_checks = [
            c for c in runnable if type(c).check_statements is not Check.check_statements
        ]
        for source in sources:
            enabled = enabled_by_path[source.path]
            for check in statement_checks:
                if check.code in enabled:
                    diagnostics.extend(
                        check.check_statements(source.path, source.statements, context)
                    )
        # The bound check_rule of each check enabled for a path, looked up once per path.
        hooks_by_path = {
            path: [c.check_rule for c in rule_checks if c.code in enabled]
            for path, enabled in enabled_by_path.items()
        }
        extend = diagnostics.extend
        for linted in linted_rules:
            for check_rule in hooks_by_path[linted.path]:
                extend(check_rule(linted, context))
        for check in set_checks:
            diagnostics.extend(
                d
                for d in check.check_ruleset(linted_rules, context)
                if check.code in enabled_by_path.get(d.path, ())
            )

        kept = self._apply_suppressions(diagnostics, sources, lines_by_path, enabled_by_path)
        overrides = self.config.severity_overrides
        if overrides:
            kept = [
                replace(d, severity=overrides[d.code]) if d.code in overrides else d for d in kept
            ]
        return LintReport(
            diagnostics=sorted_diagnostics(kept),
            files_checked=tuple(source.path for source in sources),
            rules_checked=len(linted_rules),
            notes=tuple(notes),
        )

    def _source_diagnostics(self, source: ParsedSource, lines: Sequence[str]) -> list[Diagnostic]:
        """Parse and decode errors of one file, as syntax-family diagnostics."""
        found: list[Diagnostic] = []
        if source.decode_error is not None:
            found.append(
                UnreadableFileCheck().from_decode_error(
                    source.decode_error, source.path, source.raw
                )
            )
        claimants = [c() for c in self.registry if issubclass(c, ParserErrorCheck)]
        for error in source.errors:
            found.append(self._claimant(error, claimants).from_error(error, source.path))
        return found

    @staticmethod
    def _claimant(error: RuleError, claimants: Sequence[ParserErrorCheck]) -> ParserErrorCheck:
        # The most specific error class wins: UnknownFieldError before its base RuleError.
        best: ParserErrorCheck | None = None
        best_depth = -1
        for claimant in claimants:
            for claimed in claimant.claims:
                if isinstance(error, claimed):
                    depth = type(error).__mro__.index(claimed)
                    if best is None or depth < best_depth:
                        best, best_depth = claimant, depth
        return best or SyntaxErrorCheck()

    def _apply_suppressions(
        self,
        diagnostics: list[Diagnostic],
        sources: Sequence[ParsedSource],
        lines_by_path: dict[str, list[str]],
        enabled_by_path: dict[str, frozenset[str]],
    ) -> list[Diagnostic]:
        unknown_check = UnknownSuppressionCheck()
        extents_by_path: dict[str, list[_RuleExtent]] = defaultdict(list)
        file_wide: dict[str, set[str]] = defaultdict(set)
        extra: list[Diagnostic] = []
        for source in sources:
            lines = lines_by_path[source.path]
            if "shrike:" not in source.text:
                continue
            directives = find_directives(lines)
            for directive in directives:
                codes = self._directive_codes(directive, source.path, unknown_check, extra)
                if directive.file_wide:
                    file_wide[source.path] |= codes
            for rule in source.rules:
                if rule.span.line <= 0:
                    continue
                attached = directives_above(lines, rule.span.line, directives)
                if not attached:
                    continue
                codes = set()
                for directive in attached:
                    codes |= self._directive_codes(directive, source.path, None, [])
                extents_by_path[source.path].append(
                    _RuleExtent(
                        rule.span.line, max(rule.span.end_line, rule.span.line), frozenset(codes)
                    )
                )
        for extents in extents_by_path.values():
            extents.sort(key=lambda extent: extent.start)
        starts_by_path = {
            path: [e.start for e in extents] for path, extents in extents_by_path.items()
        }

        kept = []
        for diagnostic in diagnostics:
            if diagnostic.code in file_wide.get(diagnostic.path, ()):
                continue
            rule_extents = extents_by_path.get(diagnostic.path)
            if rule_extents:
                index = bisect.bisect_right(starts_by_path[diagnostic.path], diagnostic.line) - 1
                if index >= 0:
                    extent = rule_extents[index]
                    if (
                        extent.start <= diagnostic.line <= extent.end
                        and diagnostic.code in extent.suppressed
                    ):
                        continue
            kept.append(diagnostic)
        kept.extend(d for d in extra if d.code in enabled_by_path.get(d.path, ()))
        return kept

    def _directive_codes(
        self,
        directive: SuppressionDirective,
        path: str,
        unknown_check: UnknownSuppressionCheck | None,
        extra: list[Diagnostic],
    ) -> set[str]:
        codes: set[str] = set()
        for selector in directive.selectors:
            try:
                codes |= {check.code for check in self.registry.resolve(selector)}
            except LintConfigError:
                if unknown_check is not None:
                    extra.append(
                        unknown_check.for_directive(
                            path, directive.line, directive.column, selector
                        )
                    )
        return codes


def lint_sources(sources: Sequence[ParsedSource], config: LintConfig | None = None) -> LintReport:
    return Linter(config).lint(sources)


def lint_text(text: str, path: str = "<string>", config: LintConfig | None = None) -> LintReport:
    """Lints rule text held in memory (tests, editors, the fuzzer)."""
    return Linter(config).lint([parse_shrike_source(path, text)])


def lint_paths(paths: Sequence[Path], config: LintConfig | None = None) -> LintReport:
    """Lints files and folders; raises LintInputError for a path that does not exist."""
    files = collect_rule_files(paths)
    return Linter(config).lint([read_source(path) for path in files])

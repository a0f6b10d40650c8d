"""The Shrike rule linter: checks in five families, their diagnostics, configuration and output formats.

Entry points: `Linter(config).lint(sources)` for parsed sources from any front end,
`lint_text` for text in memory and `lint_paths` for files and folders.
"""

from __future__ import annotations

from rules.lint.check import Check, LintContext, LintedRule
from rules.lint.config import LintConfig, LintConfigError, discover_config, load_config_file
from rules.lint.diagnostics import Diagnostic, Family, LintReport, Severity
from rules.lint.formatters import FORMATTERS
from rules.lint.registry import CheckRegistry, default_registry
from rules.lint.runner import (
    Linter,
    LintInputError,
    ParsedSource,
    lint_paths,
    lint_sources,
    lint_text,
    parse_shrike_source,
    read_source,
)

__all__ = [
    "FORMATTERS",
    "Check",
    "CheckRegistry",
    "Diagnostic",
    "Family",
    "LintConfig",
    "LintConfigError",
    "LintContext",
    "LintInputError",
    "LintReport",
    "LintedRule",
    "Linter",
    "ParsedSource",
    "Severity",
    "default_registry",
    "discover_config",
    "lint_paths",
    "lint_sources",
    "lint_text",
    "load_config_file",
    "parse_shrike_source",
    "read_source",
]

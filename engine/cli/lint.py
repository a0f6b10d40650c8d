"""`shrike lint`: check rule files and report diagnostics (ruff-style output and exit codes)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from integrations.snort.load import SNORT_SUFFIXES, is_snort_rules, parse_snort_source
from rules.lint.config import LintConfig, LintConfigError, discover_config, load_config_file
from rules.lint.diagnostics import Severity
from rules.lint.formatters import FORMATTERS, summary_line
from rules.lint.registry import default_registry
from rules.lint.runner import (
    RULE_FILE_SUFFIXES,
    Linter,
    LintInputError,
    collect_rule_files,
    read_source,
    variables_from_file,
)
from rules.variables import DEFAULT_VARIABLES

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_TOOL_ERROR = 2


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check rule files for errors, ATT&CK mistakes and slow rules",
        description=(
            "Check .shrike rule files (and Snort/Suricata .rules files, read through the "
            "importer). Exit 0 when clean, 1 when a finding is at or above "
            "--fail-on, 2 when the linter itself failed."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument(
        "--format", choices=sorted(FORMATTERS), default="concise", help="output format"
    )
    parser.add_argument(
        "--fail-on",
        choices=[s.value for s in Severity],
        default=None,
        help="lowest severity that makes the exit code 1 (default: warning, or the config's)",
    )
    parser.add_argument(
        "--select",
        type=_csv,
        action="extend",
        default=None,
        metavar="CODES",
        help="comma-separated codes, prefixes, check or family names to run (replaces config)",
    )
    parser.add_argument(
        "--ignore",
        type=_csv,
        action="extend",
        default=None,
        metavar="CODES",
        help="comma-separated codes, prefixes, check or family names to skip",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="shrike.yaml or pyproject.toml to read [lint] settings from (default: nearest)",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, help="write the report here")
    parser.set_defaults(func=run)


def _load_config(args: argparse.Namespace) -> LintConfig:
    if args.config is not None:
        loaded = load_config_file(args.config)
        base = loaded if loaded is not None else LintConfig()
    else:
        base = discover_config(args.paths)
    return base.with_selection(
        select=args.select,
        extend_ignore=args.ignore or (),
        fail_on=Severity.parse(args.fail_on) if args.fail_on else None,
    )


def _predefined_variables(config: LintConfig, files: list[Path]) -> frozenset[str] | None:
    """For Snort/Suricata `.rules` files, the variables of the shipped config/variables.yaml
    (the standard `$HOME_NET`, `$HTTP_PORTS`, ... that Snort predefines), unless the
    configuration names its own variables file; None leaves the Linter's default."""
    if config.variables_file is not None or not any(is_snort_rules(path) for path in files):
        return None
    if not DEFAULT_VARIABLES.is_file():
        return None
    return variables_from_file(DEFAULT_VARIABLES)


def run(args: argparse.Namespace) -> int:
    try:
        config = _load_config(args)
        files = collect_rule_files(args.paths, RULE_FILE_SUFFIXES + SNORT_SUFFIXES)
        linter = Linter(config, predefined_variables=_predefined_variables(config, files))
        sources = [
            read_source(path, parse_snort_source if is_snort_rules(path) else None)
            for path in files
        ]
        report = linter.lint(sources)
    except (LintConfigError, LintInputError) as error:
        print(f"shrike lint: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    except Exception as error:  # a bug in a check or the parser must not read as "findings"
        logging.getLogger(__name__).debug("lint failed", exc_info=True)
        print(f"shrike lint: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    text = FORMATTERS[args.format](report, default_registry().checks)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"shrike lint: cannot write {args.output}: {error}", file=sys.stderr)
            return EXIT_TOOL_ERROR
    else:
        sys.stdout.write(text)
    if args.format != "concise":
        # Machine formats keep stdout parseable; the human summary goes to stderr.
        print(summary_line(report), file=sys.stderr)
    return EXIT_FINDINGS if report.worst_at_least(config.fail_on) else EXIT_CLEAN

"""`shrike attack`: ATT&CK views of a ruleset (`coverage` writes an ATT&CK Navigator layer)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rules import ast
from rules.attack import load_catalog
from rules.attack.navigator import build_coverage_layer, claims_from_rules
from rules.lint.runner import LintInputError, collect_rule_files, read_source

EXIT_OK = 0
EXIT_TOOL_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("attack", help="MITRE ATT&CK views of a ruleset")
    commands = parser.add_subparsers(dest="attack_command", metavar="ACTION")
    commands.required = True
    coverage = commands.add_parser(
        "coverage",
        help="write an ATT&CK Navigator layer of the techniques the rules cover",
        description=(
            "Read rule files and write an ATT&CK Navigator layer (format 4.5) scoring each "
            "technique by the number of enabled rules tagged with it."
        ),
    )
    coverage.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    coverage.add_argument(
        "-o", "--output", type=Path, required=True, help="layer file to write (JSON)"
    )
    coverage.add_argument("--name", default="Shrike ruleset coverage", help="layer name")
    coverage.set_defaults(func=run_coverage)


def run_coverage(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    try:
        sources = [read_source(path) for path in collect_rule_files(args.paths)]
    except LintInputError as error:
        print(f"shrike attack coverage: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    rules: list[ast.Rule] = []
    for source in sources:
        if source.decode_error is not None:
            print(f"shrike attack coverage: {source.path}: not UTF-8, skipped", file=sys.stderr)
        for parse_error in source.errors:
            print(f"shrike attack coverage: warning: {parse_error}", file=sys.stderr)
        rules.extend(source.rules)
    paths = ", ".join(str(path) for path in args.paths)
    result = build_coverage_layer(
        claims_from_rules(rules, catalog),
        catalog,
        name=args.name,
        description=f"{len(rules)} rules from {paths}",
    )
    for claim, reason in result.skipped:
        print(
            f"shrike attack coverage: warning: rule {claim.rule_label}: {reason}; not drawn",
            file=sys.stderr,
        )
    try:
        args.output.write_text(json.dumps(result.layer, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        print(f"shrike attack coverage: cannot write {args.output}: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    entries = result.layer["techniques"]
    assert isinstance(entries, list)
    covered = {entry["techniqueID"] for entry in entries if "score" in entry}
    print(
        f"{len(covered)} techniques covered by {len(rules)} rules in {len(sources)} files; "
        f"wrote {args.output}"
    )
    return EXIT_OK

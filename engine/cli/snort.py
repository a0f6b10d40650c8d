"""`shrike import-snort`, `shrike export-snort`, `shrike ingest-snort`: Snort rules and alerts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_TOOL_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_import(subparsers)
    _register_export(subparsers)
    _register_ingest(subparsers)


# ---- import-snort --------------------------------------------------------------


def _register_import(subparsers: argparse._SubParsersAction) -> None:
    from integrations.snort.importer import FLAVORS

    parser = subparsers.add_parser(
        "import-snort",
        help="convert Snort 2.9 / Snort 3 / Suricata .rules files to .shrike files",
        description=(
            "Import Snort and Suricata rule files. Writes one .shrike file per input into DIR "
            "and prints the import report. Rules that cannot be represented fully are kept, "
            "disabled, with a diagnostic naming file:line:col, sid and option. Exit 0: every "
            "rule imported with full semantics; 1: some rules imported disabled; 2: an input "
            "could not be read or an output written."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help=".rules files")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--report", type=Path, default=None, metavar="FILE", help="write the report as JSON"
    )
    parser.add_argument(
        "--flavor",
        choices=FLAVORS,
        default="auto",
        help="rule syntax; 'auto' decides per file (HTTP buffer names are sticky in Snort 3)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list diagnostics")
    parser.set_defaults(func=run_import)


def _output_name(path: Path, used: set[str]) -> str:
    name = f"{path.stem}.shrike"
    if name in used:
        name = f"{path.parent.name}-{path.stem}.shrike"
    number = 2
    while name in used:
        name = f"{path.stem}-{number}.shrike"
        number += 1
    used.add(name)
    return name


def run_import(args: argparse.Namespace) -> int:
    from integrations.snort.errors import SnortError
    from integrations.snort.importer import import_file
    from integrations.snort.report import format_table, merge
    from integrations.snort.shrike_text import shrike_text

    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"shrike import-snort: cannot create {args.output}: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    reports = []
    used: set[str] = set()
    failed = False
    for path in args.files:
        try:
            result = import_file(path, args.flavor)
        except SnortError as error:
            print(f"shrike import-snort: {error}", file=sys.stderr)
            failed = True
            continue
        text, final, extra = shrike_text(result.rules, result.texts, str(path))
        report = result.report
        disabled_ids = {d.sid for d in result.diagnostics}
        for diagnostic in extra:
            report.note_kept_verbatim(was_imported=diagnostic.sid not in disabled_ids)
        target = args.output / _output_name(path, used)
        try:
            target.write_text(text, encoding="utf-8", errors="surrogateescape")
        except OSError as error:
            print(f"shrike import-snort: cannot write {target}: {error}", file=sys.stderr)
            failed = True
            continue
        report.written = len(final)
        reports.append(report)
        if not args.quiet:
            for diagnostic in (*result.diagnostics, *extra):
                print(diagnostic, file=sys.stderr)
    if len(reports) > 1:
        table = format_table([*reports, merge("total", reports)])
    else:
        table = format_table(reports)
    sys.stdout.write(table)
    if args.report is not None:
        try:
            args.report.write_text(
                json.dumps([r.as_json() for r in reports], indent=2) + "\n", encoding="utf-8"
            )
        except OSError as error:
            print(f"shrike import-snort: cannot write {args.report}: {error}", file=sys.stderr)
            return EXIT_TOOL_ERROR
    if failed:
        return EXIT_TOOL_ERROR
    return EXIT_PARTIAL if any(r.disabled for r in reports) else EXIT_OK


# ---- export-snort --------------------------------------------------------------


def _register_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-snort",
        help="write Shrike rules as Snort 3 rules",
        description=(
            "Export .shrike files (and .rules files, read through the importer) as Snort 3 "
            "rules. Rules Snort cannot express (windows, anomaly and detector fields) are left "
            "out and listed; rules needing a Suricata or Snort 2 keyword are listed too. Exit 0: "
            "all exported; 1: some left out; 2: an input could not be read or parsed."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="rule files or folders")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.rules")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list notes")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from integrations.snort.export import export_rules
    from rules import RuleError, ast, parse_file
    from rules.lint.runner import LintInputError, collect_rule_files

    try:
        files = collect_rule_files(args.paths)
    except LintInputError as error:
        print(f"shrike export-snort: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    collected: list[ast.Rule] = []
    for path in files:
        try:
            if path.suffix == ".rules":
                from integrations.snort.load import load_rules_file

                rules, _ = load_rules_file(path)
                collected.extend(rules)
            else:
                collected.extend(parse_file(path).rules)
        except (RuleError, ValueError) as error:
            print(f"shrike export-snort: {error}", file=sys.stderr)
            return EXIT_TOOL_ERROR
    result = export_rules(collected)
    try:
        args.output.write_text(result.text, encoding="utf-8", errors="surrogateescape")
    except OSError as error:
        print(f"shrike export-snort: cannot write {args.output}: {error}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    if not args.quiet:
        for note in result.notes:
            print(note, file=sys.stderr)
    print(
        f"exported {result.exported} of {len(collected)} rules to {args.output}; "
        f"{result.skipped} left out, {len(result.notes) - result.skipped} with notes",
        file=sys.stderr,
    )
    return EXIT_PARTIAL if result.skipped else EXIT_OK


# ---- ingest-snort --------------------------------------------------------------


def _register_ingest(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest-snort",
        help="read Snort alerts (alert_json, unified2, alert_fast) as Shrike matches",
        description=(
            "Read Snort 3 alert_json, Snort 2 unified2 or alert_fast files and write one JSON "
            "object per alert (a Shrike signature match) to stdout. Exit 2 when a file could "
            "not be read or holds a bad record (its location is printed)."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--format", choices=("auto", "alert_json", "alert_fast", "unified2"), default="auto"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="(repeatable) a .rules or .shrike file whose titles, classtypes and ATT&CK tags enrich the alerts",
    )
    parser.add_argument(
        "--year",
        type=int,
        default=None,
        help="year of timestamps written without one (default: this year)",
    )
    parser.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    from integrations.snort.alerts import match_json, read_alerts, rule_index
    from integrations.snort.errors import SnortError
    from integrations.snort.load import is_snort_rules, load_rules_file
    from rules import RuleError, ast, parse_file

    known: list[ast.Rule] = []
    for path in args.rules:
        try:
            if is_snort_rules(path):
                known.extend(load_rules_file(path)[0])
            else:
                known.extend(parse_file(path).rules)
        except (RuleError, SnortError) as error:
            print(f"shrike ingest-snort: {error}", file=sys.stderr)
            return EXIT_TOOL_ERROR
    index = rule_index(known) if known else None
    out = sys.stdout
    count = 0
    for path in args.files:
        try:
            for match in read_alerts(path, args.format, index, args.year):
                out.write(json.dumps(match_json(match)) + "\n")
                count += 1
        except SnortError as error:
            print(f"shrike ingest-snort: {error}", file=sys.stderr)
            return EXIT_TOOL_ERROR
    print(f"ingested {count} alerts", file=sys.stderr)
    return EXIT_OK

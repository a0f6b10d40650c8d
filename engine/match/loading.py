"""Reading rule files for the matcher: `.shrike` files directly, Snort/Suricata `.rules`
files through the Snort importer, with the default variables of config/variables.yaml."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from rules import RuleErrors, ast
from rules.variables import DEFAULT_VARIABLES, VariableTable, load_ruleset, load_variables


class RuleLoadError(ValueError):
    """Rules that could not be read at all (missing file, parse errors, no importer)."""


def _snort_loader() -> Callable[[Path], tuple[list[ast.Rule], Sequence[object]]]:
    try:
        module = importlib.import_module("integrations.snort")
    except ImportError as exc:
        raise RuleLoadError(f"Snort rule import is not available: {exc}") from None
    loader = getattr(module, "load_rules_file", None)
    if loader is not None:
        return loader
    importer = importlib.import_module("integrations.snort.importer")

    def load(path: Path) -> tuple[list[ast.Rule], list[str]]:
        result = importer.import_file(path)
        return list(result.rules), [str(d) for d in result.diagnostics]

    return load


def default_variables(overrides: Mapping[str, str] | None = None) -> VariableTable:
    """config/variables.yaml, with address variables replaced by `overrides` (rule syntax)."""
    table = load_variables(DEFAULT_VARIABLES) if DEFAULT_VARIABLES.exists() else VariableTable()
    if overrides:
        from rules import parse_text

        text = "\n".join(
            f"{'ports' if name.endswith('_PORTS') else 'addresses'} {name} = {value}"
            for name, value in overrides.items()
        )
        defs = [s for s in parse_text(text).statements if isinstance(s, ast.VariableDefinition)]
        table = table.with_definitions(defs)
    return table


def load_rules(
    paths: Iterable[str | Path], variables: VariableTable | None = None
) -> tuple[list[ast.Rule], VariableTable, list[str]]:
    """Rules of every file (directories: their `*.shrike` and `*.rules` files, sorted).

    Returns the rules, the variables in force and diagnostics (import problems,
    one line each, with location). Raises `RuleLoadError` when a file cannot be used.
    """
    table = variables or default_variables()
    rules: list[ast.Rule] = []
    notes: list[str] = []
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted([*path.rglob("*.shrike"), *path.rglob("*.rules")]))
        elif path.exists():
            files.append(path)
        else:
            raise RuleLoadError(f"{path}: no such rule file")
    for path in files:
        if path.suffix == ".rules":
            try:
                got, diags = _snort_loader()(path)
            except (OSError, ValueError) as exc:
                raise RuleLoadError(f"{path}: {exc}") from None
            rules.extend(got)
            notes.extend(str(d) for d in diags)
            continue
        try:
            loaded = load_ruleset(path, table)
        except RuleErrors as exc:
            raise RuleLoadError(str(exc)) from None
        rules.extend(loaded.rules)
        table = loaded.variables
    return rules, table, notes


_TRACKS = {"by_src": "src", "by_dst": "dst", "by_rule": "rule", "by_both": "both"}


def read_threshold_config(
    text: str, source: str = "threshold.config"
) -> tuple[dict[tuple[int, int], ast.Threshold], list[str]]:
    """Suricata `threshold.config` entries as thresholds by (gid, sid) (sid 0: every
    rule of that gid), and notes on the lines not applied.

    `threshold` and `event_filter` lines give a `limit`, `threshold` or `both`
    threshold; `suppress` without an address gives `limit 0` (never alert).
    `rate_filter`, `suppress` limited to addresses and `track by_flow` are noted and
    left out.
    """
    out: dict[tuple[int, int], ast.Threshold] = {}
    notes: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        fields: dict[str, str] = {}
        for part in rest.split(","):
            name, _, value = part.strip().partition(" ")
            fields[name.strip()] = value.strip()
        where = f"{source}:{number}"
        try:
            key: tuple[int, int] = (int(fields.get("gen_id", "1")), int(fields["sig_id"]))
            if kind == "suppress":
                if "ip" in fields:
                    notes.append(f"{where}: suppress by address is not applied")
                    continue
                out[key] = ast.Threshold("limit", 0, 1, "rule")
                continue
            if kind not in ("threshold", "event_filter"):
                notes.append(f"{where}: {kind} is not applied")
                continue
            track = _TRACKS.get(fields["track"])
            if track is None or fields["type"] not in ("limit", "threshold", "both"):
                notes.append(
                    f"{where}: track {fields['track']} / type {fields['type']} not applied"
                )
                continue
            count, seconds = int(fields["count"]), int(fields["seconds"])
        except (KeyError, ValueError) as exc:
            notes.append(f"{where}: cannot read {line!r} ({exc})")
            continue
        out[key] = ast.Threshold(fields["type"], count, seconds, track)
    return out, notes


def apply_thresholds(
    rules: Iterable[ast.Rule], thresholds: Mapping[tuple[int, int], ast.Threshold]
) -> list[ast.Rule]:
    """Rules with a `threshold.config` entry for their (gid, sid), or for sid 0 of their
    gid, in place of their own thresholds (as Suricata applies the file)."""
    out: list[ast.Rule] = []
    for rule in rules:
        gid = rule.gid or 1
        th = thresholds.get((gid, rule.id)) or thresholds.get((gid, 0))
        out.append(dataclasses.replace(rule, thresholds=(th,)) if th is not None else rule)
    return out

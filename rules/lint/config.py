"""Lint configuration: which checks run where, read from `shrike.yaml` or `pyproject.toml`."""

from __future__ import annotations

import contextlib
import fnmatch
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

import yaml

from rules.lint.diagnostics import Severity

CONFIG_FILE_NAMES = ("shrike.yaml", "pyproject.toml")
_KNOWN_KEYS = frozenset(
    {"select", "ignore", "per-file-ignores", "fail-on", "severity", "variables", "variables-file"}
)


class LintConfigError(ValueError):
    """A configuration file or command-line selection the linter cannot use."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class LintConfig:
    """Selectors are codes (ATK001), code prefixes (ATK), check names or family names, or ALL."""

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (glob, selectors)
    fail_on: Severity = Severity.WARNING
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)  # code -> severity
    variables: frozenset[str] = frozenset()  # variable names defined outside the rule files
    variables_file: Path | None = (
        None  # a variables YAML (config/variables.yaml) whose names count as defined
    )
    root: Path | None = None  # per-file-ignores globs are relative to this folder
    source: str | None = None  # the file this configuration came from

    def with_selection(
        self,
        *,
        select: Sequence[str] | None = None,
        extend_ignore: Sequence[str] = (),
        fail_on: Severity | None = None,
    ) -> LintConfig:
        """The command line's --select replaces the file's, --ignore adds to it."""
        return LintConfig(
            select=tuple(select) if select else self.select,
            ignore=self.ignore + tuple(extend_ignore),
            per_file_ignores=self.per_file_ignores,
            fail_on=fail_on or self.fail_on,
            severity_overrides=self.severity_overrides,
            variables=self.variables,
            variables_file=self.variables_file,
            root=self.root,
            source=self.source,
        )

    def ignored_for(self, path: str) -> tuple[str, ...]:
        """Selectors that `per-file-ignores` switches off for this file."""
        candidate = _relative_posix(path, self.root)
        found: list[str] = []
        for pattern, selectors in self.per_file_ignores:
            if fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(PurePath(path).name, pattern):
                found.extend(selectors)
        return tuple(found)


def _relative_posix(path: str, root: Path | None) -> str:
    resolved = Path(path)
    if root is not None:
        with contextlib.suppress(ValueError):
            resolved = resolved.resolve().relative_to(root.resolve())
    return PurePosixPath(*resolved.parts).as_posix() if resolved.parts else path


def _string_list(value: object, key: str, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise LintConfigError(f"lint.{key} must be a string or a list of strings", path=path)


def config_from_mapping(table: Mapping[str, object], *, path: str, root: Path | None) -> LintConfig:
    """Validates one `lint` table (already parsed from YAML or TOML)."""
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise LintConfigError(
            f"unknown lint setting(s) {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_KEYS))})",
            path=path,
        )
    config = LintConfig(root=root, source=path)
    select = _string_list(table["select"], "select", path) if "select" in table else config.select
    ignore = _string_list(table.get("ignore", []), "ignore", path)
    per_file_raw = table.get("per-file-ignores", {})
    if not isinstance(per_file_raw, Mapping):
        raise LintConfigError("lint.per-file-ignores must map a glob to codes", path=path)
    per_file = tuple(
        (str(pattern), _string_list(selectors, f"per-file-ignores.{pattern}", path))
        for pattern, selectors in per_file_raw.items()
    )
    try:
        fail_on = Severity.parse(str(table["fail-on"])) if "fail-on" in table else config.fail_on
        severity_raw = table.get("severity", {})
        if not isinstance(severity_raw, Mapping):
            raise LintConfigError("lint.severity must map a code to a severity", path=path)
        overrides = {str(code): Severity.parse(str(level)) for code, level in severity_raw.items()}
    except ValueError as error:
        if isinstance(error, LintConfigError):
            raise
        raise LintConfigError(str(error), path=path) from None
    variables = frozenset(_string_list(table.get("variables", []), "variables", path))
    variables_file = None
    if "variables-file" in table:
        relative = table["variables-file"]
        if not isinstance(relative, str) or not relative:
            raise LintConfigError("lint.variables-file must be a path", path=path)
        variables_file = (root / relative) if root is not None else Path(relative)
    return LintConfig(
        select=select,
        ignore=ignore,
        per_file_ignores=per_file,
        fail_on=fail_on,
        severity_overrides=overrides,
        variables=variables,
        variables_file=variables_file,
        root=root,
        source=path,
    )


def load_config_file(path: Path) -> LintConfig | None:
    """Reads the lint section of one file; None when the file has no lint section."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LintConfigError(f"cannot read configuration: {error}", path=str(path)) from error
    table: object
    if path.suffix == ".toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise LintConfigError(f"invalid TOML: {error}", path=str(path)) from error
        table = document.get("tool", {}).get("shrike", {}).get("lint")
    else:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise LintConfigError(f"invalid YAML: {error}", path=str(path)) from error
        if document is None:
            return None
        if not isinstance(document, Mapping):
            raise LintConfigError("top level must be a mapping", path=str(path))
        table = document.get("lint")
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise LintConfigError("the lint section must be a mapping", path=str(path))
    return config_from_mapping(table, path=str(path), root=path.parent)


def discover_config(start_points: Iterable[Path]) -> LintConfig:
    """The nearest configuration above the first path given, or the defaults.

    Like ruff, the walk goes from the path's folder up to the filesystem root and the
    first `shrike.yaml` or `pyproject.toml` with a lint section wins.
    """
    for start in start_points:
        folder = start.resolve()
        if not folder.is_dir():
            folder = folder.parent
        for candidate_dir in (folder, *folder.parents):
            for name in CONFIG_FILE_NAMES:
                candidate = candidate_dir / name
                if candidate.is_file():
                    loaded = load_config_file(candidate)
                    if loaded is not None:
                        return loaded
        break
    return LintConfig()

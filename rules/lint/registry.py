"""Finds the lint checks (one module per family under rules.lint.checks) and resolves selectors to them."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from rules.lint.check import Check
from rules.lint.config import LintConfig, LintConfigError
from rules.lint.diagnostics import Family

FAMILY_MODULES: Mapping[Family, str] = {
    Family.SYNTAX: "rules.lint.checks.syntax",
    Family.SEMANTIC: "rules.lint.checks.semantic",
    Family.ATTACK: "rules.lint.checks.attack",
    Family.PERFORMANCE: "rules.lint.checks.performance",
    Family.STYLE: "rules.lint.checks.style",
}
_KEBAB = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_CODE = re.compile(r"^[A-Z]{3}\d{3}$")


class CheckDefinitionError(TypeError):
    """A check class that breaks the registry's rules (duplicate code, bad name, ...)."""


def checks_in_module(module_name: str, family: Family) -> list[type[Check]]:
    module = importlib.import_module(module_name)
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(obj, Check)
            and obj.__module__ == module.__name__
            and "code" in vars(obj)
            and not inspect.isabstract(obj)
        ):
            if obj.family is not family:
                raise CheckDefinitionError(f"{obj.__name__} in {module_name} is not {family.label}")
            found.append(obj)
    return found


def validate_checks(checks: Sequence[type[Check]]) -> None:
    seen_codes: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for check in checks:
        label = check.__qualname__
        for attribute in ("code", "name", "severity", "description", "example_bad", "example_good"):
            if not hasattr(check, attribute):
                raise CheckDefinitionError(f"{label} lacks {attribute}")
        if not _CODE.match(check.code) or not check.code.startswith(check.family.value):
            raise CheckDefinitionError(
                f"{label}: code {check.code!r} must be {check.family.value}NNN"
            )
        if not _KEBAB.match(check.name):
            raise CheckDefinitionError(f"{label}: name {check.name!r} is not kebab-case")
        if check.code in seen_codes:
            raise CheckDefinitionError(f"{label} reuses {check.code} of {seen_codes[check.code]}")
        if check.name in seen_names:
            raise CheckDefinitionError(
                f"{label} reuses name {check.name} of {seen_names[check.name]}"
            )
        seen_codes[check.code] = label
        seen_names[check.name] = label


@dataclass(frozen=True)
class CheckRegistry:
    """Every known check, ordered by code."""

    checks: tuple[type[Check], ...]
    _by_code: Mapping[str, type[Check]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_checks(self.checks)
        object.__setattr__(self, "_by_code", {check.code: check for check in self.checks})

    def __iter__(self) -> Iterator[type[Check]]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def by_code(self, code: str) -> type[Check]:
        return self._by_code[code]

    def resolve(self, selector: str) -> tuple[type[Check], ...]:
        """Checks a selector names: ALL, a code or code prefix, a check name or a family name."""
        wanted = selector.strip()
        if wanted.upper() == "ALL":
            return self.checks
        lowered = wanted.lower()
        matched = tuple(
            check
            for check in self.checks
            if (check.code.startswith(wanted.upper()) and wanted[:1].isalpha() and wanted.isalnum())
            or check.name == lowered
            or check.family.label == lowered
        )
        if not matched:
            raise LintConfigError(
                f"{selector!r} selects no check (use a code such as ATK001, a prefix such as "
                "ATK, a check name, a family name or ALL)"
            )
        return matched

    def resolve_all(self, selectors: Iterable[str]) -> frozenset[str]:
        return frozenset(check.code for s in selectors for check in self.resolve(s))

    def enabled_codes(self, config: LintConfig, path: str | None = None) -> frozenset[str]:
        """Codes that run on `path` under `config` (select, minus ignore, minus per-file ignores)."""
        enabled = self.resolve_all(config.select) - self.resolve_all(config.ignore)
        if path is not None:
            enabled -= self.resolve_all(config.ignored_for(path))
        return enabled

    def validate_config(self, config: LintConfig) -> None:
        """Raises LintConfigError for a selector or severity override that names no check."""
        self.resolve_all(config.select)
        self.resolve_all(config.ignore)
        for _, selectors in config.per_file_ignores:
            self.resolve_all(selectors)
        for code in config.severity_overrides:
            if code not in self._by_code:
                raise LintConfigError(f"severity override for unknown check {code!r}")


@cache
def default_registry() -> CheckRegistry:
    """All checks shipped with Shrike, discovered once per process."""
    found: list[type[Check]] = []
    for family, module_name in FAMILY_MODULES.items():
        found.extend(checks_in_module(module_name, family))
    return CheckRegistry(tuple(sorted(found, key=lambda check: check.code)))

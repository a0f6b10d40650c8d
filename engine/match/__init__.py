"""The signature matcher: compile rules once (`compile_ruleset`), then scan batches (`Matcher`).

See docs/matching.md for the prefilter, the slow path and the evaluation semantics.
"""

from __future__ import annotations

from engine.match.compiler import (
    CompileDiagnostic,
    CompiledRule,
    CompiledRuleset,
    choose_fast_pattern,
    compile_ruleset,
)
from engine.match.loading import RuleLoadError, load_rules
from engine.match.matcher import Alert, Matcher, MatcherStats, RuleProfile

#: `compile(rules)`: the same as `compile_ruleset`.
compile = compile_ruleset

__all__ = [
    "Alert",
    "CompileDiagnostic",
    "CompiledRule",
    "CompiledRuleset",
    "Matcher",
    "MatcherStats",
    "RuleLoadError",
    "RuleProfile",
    "choose_fast_pattern",
    "compile",
    "compile_ruleset",
    "load_rules",
]

"""Snort 2.9, Snort 3 and Suricata rules to Shrike rules, never dropping one.

Each option goes to the translator that claims its name.  An option nobody
claims, or a value its translator declines, becomes a `Diagnostic` naming the
rule's sid and the option's line and column; the rule is still imported,
disabled, with the option kept verbatim (`OpaqueOption`).  After an unknown
option the payload options that follow are kept verbatim too, since their
meaning depends on it (is it a buffer? does it move the cursor?).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from integrations.snort.classifications import derive_severity
from integrations.snort.errors import Decline, Diagnostic, Location, SnortError
from integrations.snort.header import parse_header
from integrations.snort.report import FileReport
from integrations.snort.tokenize import RawOption, RawRule, Unreadable, iter_rules
from integrations.snort.translate import (
    RuleBuilder,
    Translator,
    build_index,
    meta,
    opaque,
    packet,
    payload,
    state,
)
from integrations.snort.translate.payload import is_content_modifier
from integrations.snort.values import unquote
from rules import ast
from rules.parser import ACTIONS

FLAVORS = ("auto", "snort2", "snort3", "suricata")

_TRANSLATORS: tuple[Translator, ...] = (
    *meta.TRANSLATORS,
    *payload.TRANSLATORS,
    *packet.TRANSLATORS,
    *state.TRANSLATORS,
    *opaque.TRANSLATORS,
)
_INDEX = build_index(_TRANSLATORS)
#: Every option name some translator claims.
CLAIMED_OPTIONS = frozenset(_INDEX)
#: Descriptive options (msg, sid, metadata, ...), kept on the rule when unreadable.
_DESCRIPTIVE = frozenset(n for n, t in _INDEX.items() if t in meta.TRANSLATORS)
#: Options whose meaning does not depend on the options before them (no buffer or
#: cursor): still translated after an unknown option.
_POSITION_FREE = _DESCRIPTIVE | frozenset(
    n for n, t in _INDEX.items() if t in packet.TRANSLATORS or t in state.TRANSLATORS
)
#: Options only Snort 2 style rules write on their own (Snort 3 puts them inside `content`).
_SNORT2_MODIFIERS = frozenset(
    {"nocase", "depth", "offset", "distance", "within", "fast_pattern", "uricontent"}
)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The rules read from one source, every diagnostic, and the per-file report."""

    rules: tuple[ast.Rule, ...]
    diagnostics: tuple[Diagnostic, ...]
    report: FileReport
    texts: tuple[str, ...] = ()  # each rule's Snort text, `# `-prefixed when commented out


def rule_flavor(raw: RawRule) -> str | None:
    """`snort3`, `snort2` or None (undecided) from what one rule shows."""
    for option in raw.options:
        if option.name == "content" and option.value and not option.value.rstrip().endswith('"'):
            return "snort3"  # `content:"x",nocase` modifiers inside the option
        if option.name in _SNORT2_MODIFIERS:
            return "snort2"
        if option.name == "service":
            return "snort3"
    if len(raw.header) == 1:
        return "snort3"
    return None


def detect_flavor(shown: Iterable[str | None]) -> str:
    """The flavour most rules of a file show (`rule_flavor` of each); Snort 2 style
    when none shows any."""
    votes = {"snort2": 0, "snort3": 0}
    for flavor in shown:
        if flavor is not None:
            votes[flavor] += 1
    return "snort3" if votes["snort3"] > votes["snort2"] else "snort2"


def import_rule(
    raw: RawRule, flavor: str = "snort2", shown: str | None = None
) -> tuple[ast.Rule, list[Diagnostic]]:
    """One rule and the diagnostics it raised (empty when imported with full semantics).

    `flavor` applies when the rule itself shows none; `shown` is what
    `rule_flavor(raw)` returned, when the caller already computed it."""
    rule = RuleBuilder(shown or rule_flavor(raw) or flavor, raw.location)
    try:
        header: ast.Header | None = parse_header(raw.header)
    except Decline as decline:
        header = None
        rule.problem(RawOption("header", None, raw.location), decline.message, unsupported=False)
    rule.protocol = header.protocol.lower() if header is not None else ""
    for option in raw.options:
        _apply(option, rule)
    rule.finish_pending()
    if header is None:
        # Keep the header as written; the rule can only be reviewed, not run.
        header = ast.Header(raw.header[0].lower() if raw.header[0].isidentifier() else "ip")
        rule.options.append(ast.OpaqueOption("snort_header", " ".join(raw.header)))
    action = raw.action if raw.action in ACTIONS else "alert"
    if action != raw.action:
        rule.problem(
            RawOption("action", raw.action, raw.location),
            f"action '{raw.action}' has no Shrike equivalent",
            unsupported=False,
        )
        rule.options.append(ast.OpaqueOption("snort_action", raw.action))
    if rule.sid is None:
        rule.problem(RawOption("sid", None, raw.location), "rule has no sid", unsupported=False)
    built = ast.Rule(
        title=rule.title,
        id=rule.sid if rule.sid is not None else 0,
        header=ast.Header(
            header.protocol,
            header.source,
            header.source_ports,
            header.direction,
            header.destination,
            header.destination_ports,
            tuple(rule.flow),
        ),
        rev=rule.rev,
        gid=rule.gid,
        action=action,
        enabled=not raw.commented and not rule.issues,
        severity=derive_severity(rule.priority, rule.classtype, rule.metadata),
        priority=rule.priority,
        classtype=rule.classtype,
        techniques=tuple(rule.techniques),
        tactics=tuple(rule.tactics),
        references=tuple(rule.references),
        metadata=tuple(rule.metadata),
        services=tuple(rule.services),
        condition=rule.condition(),
        thresholds=tuple(rule.thresholds),
        bit_actions=tuple(rule.bit_actions),
        int_actions=tuple(rule.int_actions),
        options=tuple(rule.options),
        span=ast.Span(
            raw.location.file,
            raw.location.line,
            raw.location.column,
            raw.location.line,
            raw.location.column,
        ),
    )
    diagnostics = [
        Diagnostic(issue.location, rule.sid, issue.option, issue.message) for issue in rule.issues
    ]
    return built, diagnostics


def _apply(option: RawOption, rule: RuleBuilder) -> None:
    if rule.verbatim and option.name not in _POSITION_FREE:
        rule.add_opaque(option.name, option.value)
        return
    if rule.pending is not None and not is_content_modifier(option, rule):
        rule.finish_pending()
    translator = _INDEX.get(option.name)
    if translator is None:
        rule.finish_pending()
        rule.problem(option, "no translator claims this option", unsupported=True)
        rule.verbatim = True
        rule.add_opaque(option.name, option.value)
        return
    try:
        translator.translate(option, rule)
    except Decline as decline:
        rule.problem(option, decline.message, unsupported=False)
        if option.name in _DESCRIPTIVE:
            rule.options.append(ast.OpaqueOption(option.name, option.value))
            return
        rule.finish_pending()
        rule.verbatim = True
        rule.add_opaque(option.name, option.value)


def import_text(text: str, path: str = "<string>", flavor: str = "auto") -> ImportResult:
    """Import every rule of one rule file's text."""
    if flavor not in FLAVORS:
        raise ValueError(f"unknown flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")
    items = list(iter_rules(text, path))
    shown = {id(item): rule_flavor(item) for item in items if isinstance(item, RawRule)}
    if flavor == "auto":
        flavor = detect_flavor(shown.values())
    elif flavor == "suricata":
        flavor = "snort2"
    rules: list[ast.Rule] = []
    texts: list[str] = []
    diagnostics: list[Diagnostic] = []
    report = FileReport(path)
    for item in items:
        if isinstance(item, RawRule):
            rule, found = import_rule(item, flavor, shown[id(item)])
        else:
            rule, found = unreadable_rule(item)
        commented = item.commented
        rules.append(rule)
        texts.append(("# " if commented else "") + item.text)
        diagnostics.extend(found)
        report.add(rule, commented, found)
    return ImportResult(tuple(rules), tuple(diagnostics), report, tuple(texts))


_SID = re.compile(r"\bsid\s*:\s*(\d+)")
_MSG = re.compile(r'\bmsg\s*:\s*"((?:[^"\\]|\\.)*)"')


def unreadable_rule(item: Unreadable) -> tuple[ast.Rule, list[Diagnostic]]:
    """A disabled rule holding the text of a rule that could not be split."""
    sid_match = _SID.search(item.text)
    msg_match = _MSG.search(item.text)
    sid = int(sid_match.group(1)) if sid_match else None
    location = item.error.location
    rule = ast.Rule(
        title=unquote(msg_match.group(1)) if msg_match else "unreadable Snort rule",
        id=sid if sid is not None else 0,
        header=ast.Header("ip"),
        enabled=False,
        options=(ast.OpaqueOption("snort_rule", item.text),),
        span=ast.Span(
            location.file, location.line, location.column, location.line, location.column
        ),
    )
    return rule, [Diagnostic(location, sid, "rule", item.error.message)]


def import_file(path: str | Path, flavor: str = "auto") -> ImportResult:
    """Read and import one `.rules` file; unreadable files raise `SnortError`."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as error:
        raise SnortError(
            f"cannot read rule file: {error.strerror or error}", Location(str(path))
        ) from error
    return import_text(text, str(path), flavor)

"""Translators for options that describe a rule without changing what it matches."""

from __future__ import annotations

import re

from integrations.snort.errors import Decline
from integrations.snort.tokenize import RawOption
from integrations.snort.translate import RuleBuilder
from integrations.snort.values import parse_int, split_commas, unquote
from rules import ast

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_TECHNIQUE = re.compile(r"T\d{4}(\.\d{3})?\Z")
_TACTIC = re.compile(r"TA\d{4}\Z")

#: ET metadata keys that carry ATT&CK ids; they become the rule's techniques and tactics.
TECHNIQUE_KEY = "mitre_technique_id"
TACTIC_KEY = "mitre_tactic_id"


def _value(option: RawOption) -> str:
    if option.value is None or not option.value.strip():
        raise Decline(f"{option.name} needs a value")
    return option.value


class Message:
    names = frozenset({"msg"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        rule.title = unquote(_value(option))


class Identity:
    """`sid`, `rev`, `gid`, `priority`."""

    names = frozenset({"sid", "rev", "gid", "priority"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        number = parse_int(_value(option), option.name)
        if number < 0:
            raise Decline(f"{option.name} must not be negative")
        if option.name == "sid":
            rule.sid = number
        elif option.name == "rev":
            rule.rev = number
        elif option.name == "gid":
            rule.gid = number
        else:
            rule.priority = number


class Classtype:
    names = frozenset({"classtype"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        value = _value(option).strip()
        if not _WORD.match(value):
            raise Decline(f"classtype {value!r} is not a name")
        rule.classtype = value


class Reference:
    names = frozenset({"reference"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        kind, sep, value = _value(option).partition(",")
        kind = kind.strip()
        if not sep or not _WORD.match(kind):
            raise Decline("reference must read 'kind,value'")
        rule.references.append(ast.Reference(kind, unquote(value.strip())))


class Metadata:
    """`metadata:key value, key value;` with ATT&CK ids lifted into techniques/tactics.

    Rulesets repeat the same entries thousands of times (`deployment Perimeter`),
    so entries are shared: AST nodes are immutable and compare by value."""

    names = frozenset({"metadata"})
    _CACHE_LIMIT = 50_000

    def __init__(self) -> None:
        self._entries: dict[str, ast.MetadataEntry] = {}

    def _entry(self, text: str) -> ast.MetadataEntry | ast.OpaqueOption:
        entry = self._entries.get(text)
        if entry is None:
            key, _, value = text.partition(" ")
            if _WORD.match(key):
                entry = ast.MetadataEntry(key, value.strip())
            else:
                # Not `key value` (`priority:5`): Suricata skips such an entry; it
                # is kept as written, on the rule, so the export writes it back.
                return ast.OpaqueOption("metadata", text)
            if len(self._entries) < self._CACHE_LIMIT:
                self._entries[text] = entry
        return entry

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        entries = [self._entry(text) for text in split_commas(_value(option)) if text]
        for entry in entries:
            if isinstance(entry, ast.OpaqueOption):
                rule.options.append(entry)
                continue
            key, value = entry.key, entry.value
            if key == TECHNIQUE_KEY and _TECHNIQUE.match(value):
                if value not in rule.techniques:
                    rule.techniques.append(value)
            elif key == TACTIC_KEY and _TACTIC.match(value):
                if value not in rule.tactics:
                    rule.tactics.append(value)
            else:
                rule.metadata.append(entry)


class Service:
    """Snort 3 `service:http,ssl;`."""

    names = frozenset({"service"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        names = split_commas(_value(option))
        for name in names:
            if not _WORD.match(name):
                raise Decline(f"service {name!r} is not a name")
        rule.services.extend(names)


class RuleLevelOption:
    """Options kept verbatim on the rule that do not change what matches:
    logging (`tag`), alert decoration (`target`, `rem`), actions taken after
    a match (`replace`, `filestore`), and Suricata's `prefilter`, which only
    picks the condition its engine checks first."""

    names = frozenset({"tag", "target", "rem", "replace", "filestore", "sd_action", "prefilter"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        rule.options.append(ast.OpaqueOption(option.name, option.value))


TRANSLATORS = (
    Message(),
    Identity(),
    Classtype(),
    Reference(),
    Metadata(),
    Service(),
    RuleLevelOption(),
)

"""Translators for state and rate: flowbits, xbits, noalert, threshold, detection_filter."""

from __future__ import annotations

import re

from integrations.snort.errors import Decline
from integrations.snort.tokenize import RawOption
from integrations.snort.translate import RuleBuilder
from integrations.snort.values import VARIABLE_NAME, parse_int, split_commas
from rules import ast

_BIT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_TESTS = ("isset", "isnotset")
_ACTIONS = ("set", "unset", "toggle", "setx", "reset", "noalert")
_TRACKS = {
    "by_src": "src",
    "by_dst": "dst",
    "by_rule": "rule",
    "by_both": "both",
    "by_flow": "flow",  # Suricata
}
_XBITS_TRACKS = ("ip_src", "ip_dst", "ip_pair", "tx")


def _names(text: str) -> tuple[tuple[str, ...], str | None]:
    operator = "&" if "&" in text else "|" if "|" in text else None
    if operator is not None and ("&" in text and "|" in text):
        raise Decline("bit names mix '&' and '|'")
    names = tuple(n.strip() for n in (text.split(operator) if operator else [text]))
    for name in names:
        if not _BIT_NAME.match(name):
            raise Decline(f"bit name {name!r} is not a name")
    return names, operator


def _place(rule: RuleBuilder, bits: ast.Flowbits) -> None:
    if bits.action in _TESTS:
        rule.add_condition(bits)
    else:
        rule.bit_actions.append(bits)


class Flowbits:
    names = frozenset({"flowbits"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        action = parts[0]
        if action not in _TESTS + _ACTIONS:
            raise Decline(f"unknown flowbits operation '{action}'")
        names: tuple[str, ...] = ()
        operator = group = None
        if len(parts) > 1:
            names, operator = _names(parts[1])
        if len(parts) > 2:
            group = parts[2]
            if len(parts) > 3 or not _BIT_NAME.match(group):
                raise Decline(f"cannot read flowbits {option.value!r}")
        if not names and action not in ("noalert", "reset"):
            raise Decline(f"flowbits {action} needs a bit name")
        if names and action == "noalert":
            raise Decline("flowbits noalert takes no bit name")
        _place(rule, ast.Flowbits("flowbits", action, names, operator, group))


class NoAlert:
    """Suricata's `noalert;`: the same as `flowbits:noalert;`."""

    names = frozenset({"noalert"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value:
            raise Decline("noalert takes no value")
        rule.bit_actions.append(ast.Flowbits("flowbits", "noalert"))


class Xbits:
    """`xbits:set,name,track ip_src[,expire 60];`."""

    names = frozenset({"xbits"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        if len(parts) < 3:
            raise Decline("xbits needs an operation, a name and 'track'")
        action = parts[0]
        if action not in _TESTS + _ACTIONS:
            raise Decline(f"unknown xbits operation '{action}'")
        names, operator = _names(parts[1])
        track = expire = None
        for part in parts[2:]:
            word, _, arg = part.partition(" ")
            arg = arg.strip()
            if word == "track" and arg in _XBITS_TRACKS:
                track = arg
            elif word == "expire":
                expire = parse_int(arg, "expire")
            else:
                raise Decline(f"cannot read xbits argument {part!r}")
        if track is None:
            raise Decline("xbits needs 'track ip_src|ip_dst|ip_pair|tx'")
        _place(rule, ast.Flowbits("xbits", action, names, operator, None, track, expire))


class Hostbits:
    """Suricata `hostbits:set,name[,src|dst][,expire 60];`: bits kept per host, the
    same store as `xbits` tracked by `ip_src` (the default) or `ip_dst`."""

    names = frozenset({"hostbits"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        action = parts[0]
        if action == "noalert":
            if len(parts) > 1:
                raise Decline("hostbits noalert takes no bit name")
            rule.bit_actions.append(ast.Flowbits("flowbits", "noalert"))
            return
        if action not in (*_TESTS, "set", "unset", "toggle"):
            raise Decline(f"unknown hostbits operation '{action}'")
        if len(parts) < 2:
            raise Decline(f"hostbits {action} needs a bit name")
        names, operator = _names(parts[1])
        track, expire = "ip_src", None
        for part in parts[2:]:
            word, _, arg = part.partition(" ")
            if word in ("src", "dst") and not arg:
                track = f"ip_{word}"
            elif word == "expire" and action == "set":
                expire = parse_int(arg.strip(), "expire")
            else:
                raise Decline(f"cannot read hostbits argument {part!r}")
        _place(rule, ast.Flowbits("xbits", action, names, operator, None, track, expire))


#: Suricata `unique_on` values and the field whose distinct values are counted.
_UNIQUE_ON = {"src_port": "src.port", "dst_port": "dst.port"}


class Threshold:
    """`threshold:type limit, track by_src, count 1, seconds 60;` and `detection_filter`."""

    names = frozenset({"threshold", "detection_filter"})

    _WORDS = ("type", "track", "count", "seconds", "multiplier", "unique_on")

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        keyed: dict[str, str] = {}
        for part in split_commas(option.value or ""):
            word, _, arg = part.partition(" ")
            if word in keyed or word not in self._WORDS:
                raise Decline(f"cannot read {option.name} argument {part!r}")
            keyed[word] = arg.strip()
        kind = "detection_filter" if option.name == "detection_filter" else keyed.get("type")
        # Suricata's backoff counts with a multiplier instead of a period
        period = "multiplier" if kind == "backoff" else "seconds"
        needed = {"track", "count", period} | ({"type"} if option.name == "threshold" else set())
        if set(keyed) - {"unique_on"} != needed:
            raise Decline(f"{option.name} needs {', '.join(sorted(needed))}")
        if kind not in ("limit", "threshold", "both", "backoff", "detection_filter"):
            raise Decline(f"unknown threshold type {kind!r}")
        track = _TRACKS.get(keyed["track"])
        if track is None:
            raise Decline(f"unknown track {keyed['track']!r}")
        unique = None
        if "unique_on" in keyed:
            unique = _UNIQUE_ON.get(keyed["unique_on"])
            if unique is None or kind != "detection_filter":
                raise Decline(f"cannot count distinct {keyed['unique_on']!r} in {option.name}")
        count = parse_int(keyed["count"], "count")
        value = parse_int(keyed[period], period)
        if count < 0 or value <= 0:
            raise Decline(f"count must be >= 0 and {period} > 0")
        if kind == "backoff":
            if count < 1:
                raise Decline("backoff count must be at least 1")
            rule.thresholds.append(ast.Threshold(kind, count, 0, track, multiplier=value))
        else:
            rule.thresholds.append(ast.Threshold(kind, count, value, track, unique=unique))


class Flowint:
    """Suricata `flowint:name,op[,value]`: tests become conditions, changes (`= + -`)
    rule-level actions applied when the rule matches."""

    names = frozenset({"flowint"})
    _TESTS = ("isset", "notset", "isnotset", "==", "!=", "<", "<=", ">", ">=")
    _CHANGES = ("=", "+", "-")

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        if len(parts) not in (2, 3) or not VARIABLE_NAME.match(parts[0]):
            raise Decline(f"cannot read flowint {option.value!r}")
        name, operator = parts[0], parts[1]
        if operator == "isnotset":
            operator = "notset"
        flag = operator in ("isset", "notset")
        if (operator not in self._TESTS and operator not in self._CHANGES) or (
            flag != (len(parts) == 2)
        ):
            raise Decline(f"cannot read flowint {option.value!r}")
        value: int | str | None = None
        if not flag:
            text = parts[2]
            value = text if VARIABLE_NAME.match(text) else parse_int(text, "flowint value")
            if isinstance(value, int) and not 0 <= value < 2**32:
                raise Decline("flowint values are 32-bit unsigned numbers")
        node = ast.Flowint(name, operator, value)
        if operator in self._CHANGES:
            rule.int_actions.append(node)
        else:
            rule.add_condition(node)


TRANSLATORS = (Flowbits(), NoAlert(), Xbits(), Hostbits(), Threshold(), Flowint())

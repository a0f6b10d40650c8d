"""Translators for header-level tests: flow state, TCP/IP/ICMP fields, sizes."""

from __future__ import annotations

import re

from integrations.snort.errors import Decline
from integrations.snort.tokenize import RawOption
from integrations.snort.translate import RuleBuilder
from integrations.snort.values import parse_comparison, split_commas
from rules import ast, fields

FLOW_OPTIONS = frozenset(
    {
        "established",
        "not_established",
        "stateless",
        "to_server",
        "to_client",
        "from_server",
        "from_client",
        "only_stream",
        "no_stream",
        "only_frag",
        "no_frag",
    }
)

#: Snort option -> (Shrike field, whether `a-b` ranges are allowed).
NUMERIC_FIELDS = {
    "dsize": ("dsize", False),
    "ttl": ("ip.ttl", True),
    "tos": ("ip.tos", False),
    "id": ("ip.id", False),
    "ip_proto": ("ip.proto", False),
    "seq": ("tcp.seq", False),
    "ack": ("tcp.ack", False),
    "window": ("tcp.window", False),
    "itype": ("icmp.type", False),
    "icode": ("icmp.code", False),
    "icmp_id": ("icmp.id", False),
    "icmp_seq": ("icmp.seq", False),
    "fragoffset": ("ip.frag_offset", False),
    "dns.opcode": ("dns.opcode", False),  # Suricata
    "tls.cert_chain_len": ("tls.cert_chain_len", False),  # Suricata
}
#: NUMERIC_FIELDS options Snort 3 lacks.
SURICATA_NUMERIC = frozenset({"dns.opcode", "tls.cert_chain_len"})

_IP_PROTOCOLS = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "sctp": 132,
}
_FLAGS = re.compile(r"^([!+*]?)([A-Za-z0-9]+?)([+*]?)$")


def _value(option: RawOption) -> str:
    if option.value is None or not option.value.strip():
        raise Decline(f"{option.name} needs a value")
    return option.value.strip()


class Flow:
    names = frozenset({"flow"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        words = split_commas(_value(option))
        for word in words:
            if word not in FLOW_OPTIONS:
                raise Decline(f"flow option '{word}' is not one Shrike evaluates")
        rule.flow.extend(words)


class NumericField:
    """`dsize`, `ttl`, `itype`, ...: one packet field compared with a number or range."""

    names = frozenset(NUMERIC_FIELDS)

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        field_name, dash_range = NUMERIC_FIELDS[option.name]
        text = _value(option)
        if option.name == "ip_proto":
            negated, bare = (True, text[1:].strip()) if text.startswith("!") else (False, text)
            if bare.lower() in _IP_PROTOCOLS:
                number = _IP_PROTOCOLS[bare.lower()]
                rule.add_condition(
                    ast.Comparison(ast.FieldRef(field_name), "!=" if negated else "==", number)
                )
                return
        operator, value = parse_comparison(text, option.name, dash_range)
        rule.add_condition(ast.Comparison(ast.FieldRef(field_name), operator, value))


class MultiInteger:
    """Suricata multi-integers, `dns.rrtype:1,0`: a comparison and which values it
    applies to (`any`, the default; `all`; an index, negative from the end)."""

    names = frozenset({"dns.rrtype"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(_value(option))
        if len(parts) > 2:
            raise Decline(f"cannot read {option.name} {option.value!r}")
        operator, value = parse_comparison(parts[0], option.name)
        index: int | str | None = None
        if len(parts) == 2:
            word = parts[1]
            if word == "all":
                index = "all"
            elif re.fullmatch(r"-?\d+", word):
                index = int(word)
            elif word != "any":  # `any` is the default
                raise Decline(f"{option.name} index {word!r} is not one Shrike evaluates")
        field_ref = ast.FieldRef(option.name)
        rule.add_condition(ast.Comparison(field_ref, operator, value, index=index))


class FtpBounce:
    """Suricata `ftpbounce`: an FTP PORT command names another host than the client."""

    names = frozenset({"ftpbounce"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value:
            raise Decline("ftpbounce takes no value")
        rule.add_condition(ast.Comparison(ast.FieldRef("ftp.bounce"), "==", True))


class UriLength:
    """Snort 2 / Suricata `urilen:>10[,norm|raw]`."""

    names = frozenset({"urilen"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(_value(option))
        field_name = "http.uri.len"
        if len(parts) == 2 and parts[1] in ("norm", "raw"):  # `norm` is the default
            field_name = "http.uri.raw.len" if parts[1] == "raw" else field_name
        elif len(parts) != 1:
            raise Decline(f"cannot read urilen {option.value!r}")
        operator, value = parse_comparison(parts[0], "urilen")
        rule.add_condition(ast.Comparison(ast.FieldRef(field_name), operator, value))


class FlagBits:
    """`flags:S,12` / `flags:+SA` / `fragbits:!D`: TCP flags and IP fragment bits.
    Suricata's `tcp.flags` is another spelling of `flags`."""

    names = frozenset({"flags", "tcp.flags", "fragbits"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        name = "flags" if option.name == "tcp.flags" else option.name
        parts = split_commas(_value(option))
        if len(parts) > 2 or (len(parts) == 2 and name != "flags"):
            raise Decline(f"cannot read {option.name} {option.value!r}")
        match = _FLAGS.match(parts[0].replace(" ", ""))
        if match is None or (match.group(1) and match.group(3)):
            raise Decline(f"cannot read {option.name} {parts[0]!r}")
        modifier = match.group(1) or match.group(3)
        letters = match.group(2).upper()
        if name == "flags":
            field_name, allowed = "tcp.flags", fields.TCP_FLAG_LETTERS
        else:
            field_name, allowed = "ip.fragbits", fields.FRAG_FLAG_LETTERS
        if letters == "0" and name == "flags":
            # No flag set at all: the same as "none of the eight flags".
            letters, modifier = "FSRPAUCE", "!"
        if not set(letters) <= allowed or "0" in letters:
            raise Decline(f"unknown {option.name} letters in {parts[0]!r}")
        # Letter order is free in Snort; the reserved bits 1 and 2 go last so
        # the set reads as a word (`FS12`, not `12FS`).
        letters = "".join(c for c in letters if c.isalpha()) + "".join(
            c for c in letters if c.isdigit()
        )
        mask = None
        if len(parts) == 2:
            mask = parts[1].upper()
            if not mask or not set(mask) <= fields.TCP_FLAG_LETTERS:
                raise Decline(f"cannot read flags mask {parts[1]!r}")
        ref = ast.FieldRef(field_name)
        symbol = ast.Symbol(letters)
        if modifier == "!":
            rule.add_condition(ast.Not(ast.Comparison(ref, "has_any", symbol, mask)))
        elif modifier == "+":
            rule.add_condition(ast.Comparison(ref, "has", symbol, mask))
        elif modifier == "*":
            rule.add_condition(ast.Comparison(ref, "has_any", symbol, mask))
        else:
            rule.add_condition(ast.Comparison(ref, "==", symbol, mask))


class IpOptions:
    names = frozenset({"ipopts"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        value = _value(option)
        if value not in fields.IP_OPTIONS:
            raise Decline(f"unknown ipopts '{value}'")
        rule.add_condition(ast.Comparison(ast.FieldRef("ip.options"), "has", ast.Symbol(value)))


class SameIp:
    names = frozenset({"sameip"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value:
            raise Decline("sameip takes no value")
        rule.add_condition(ast.Comparison(ast.FieldRef("sameip"), "==", True))


class StreamSize:
    """`stream_size:server,>,100`."""

    names = frozenset({"stream_size"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(_value(option))
        if len(parts) != 3 or parts[0] not in ("server", "client", "both", "either"):
            raise Decline(f"cannot read stream_size {option.value!r}")
        operator, value = parse_comparison(parts[1] + parts[2], "stream_size")
        if isinstance(value, ast.Range):
            raise Decline("stream_size takes one operator and a number")
        rule.add_condition(ast.Comparison(ast.FieldRef(f"stream.size.{parts[0]}"), operator, value))


#: The protocols a Suricata `app-layer-protocol` name also covers unless `,exact`
#: is given: DNS carried over HTTP/2 is DNS and HTTP/2, and `http` means either
#: version. Names are the inspector's (`http` is HTTP/1).
APP_PROTOCOL_RELATIVES: dict[str, tuple[str, ...]] = {
    "dns": ("dns", "doh2"),
    "http": ("http", "http2"),
    "http2": ("http2", "doh2"),
    "doh2": ("doh2", "http2", "dns", "http"),
    "dcerpc": ("dcerpc", "smb"),
}


class AppProtocol:
    """Suricata `app-layer-protocol:http` / `:!tls`: the flow's detected protocol.

    `,exact` (the protocol itself) is what `==` tests; without it, a name with
    relatives in `APP_PROTOCOL_RELATIVES` also covers those (`app.protocol in
    [...]`, negated with `not`), as Suricata's matching does."""

    names = frozenset({"app-layer-protocol"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        text = _value(option)
        head, sep, mode = text.partition(",")
        field_name = "app.protocol"
        exact = False
        if sep and mode.strip() == "exact":
            text = head.strip()
            exact = True
        elif sep and mode.strip() in ("to_server", "to_client"):
            # the protocol that direction's own data shows (Suricata's alproto_ts/_tc)
            text = head.strip()
            field_name = f"app.protocol.{mode.strip()}"
        negated = text.startswith("!")
        name = text[1:].strip() if negated else text
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            raise Decline(f"cannot read app-layer-protocol {text!r}")
        if field_name != "app.protocol" and name == "http1":
            name = "http"  # the inspector's name for HTTP/1
        field_ref = ast.FieldRef(field_name)
        relatives = APP_PROTOCOL_RELATIVES.get(name)
        if field_name == "app.protocol" and not exact and relatives is not None:
            covers = ast.Comparison(field_ref, "in", ast.ValueList(relatives))
            rule.add_condition(ast.Not(covers) if negated else covers)
            return
        rule.add_condition(ast.Comparison(field_ref, "!=" if negated else "==", name))


TRANSLATORS = (
    AppProtocol(),
    Flow(),
    NumericField(),
    MultiInteger(),
    FtpBounce(),
    UriLength(),
    FlagBits(),
    IpOptions(),
    SameIp(),
    StreamSize(),
)

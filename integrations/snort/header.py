"""Snort rule headers (`tcp $HOME_NET any -> $EXTERNAL_NET [80,443]`) to and from `ast.Header`."""

from __future__ import annotations

import ipaddress
import re

from integrations.snort.errors import Decline
from rules import ast, formatter

_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\Z")
_PORT_RANGE = re.compile(r"(\d*):(\d*)\Z")
_PROTOCOL = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*\Z")
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(/\d{1,2})?\Z")


def parse_header(words: tuple[str, ...]) -> ast.Header:
    """Protocol alone (Snort 3 service rules) or the full seven-word header minus the action."""
    protocol = words[0].lower()
    if not _PROTOCOL.match(protocol):
        raise Decline(f"protocol {words[0]!r} is not a name")
    if len(words) == 1:
        return ast.Header(protocol)
    if len(words) != 6:
        raise Decline(
            f"header has {len(words) + 1} words; expected 'action proto src sport dir dst dport'"
        )
    _, src, sport, direction, dst, dport = words
    if direction not in ("->", "<>", "=>"):  # `=>`: Suricata's transaction rules
        raise Decline(f"direction {direction!r} is not '->', '<>' or '=>'")
    return ast.Header(
        protocol,
        source=parse_address(src),
        source_ports=parse_port(sport),
        direction=direction,
        destination=parse_address(dst),
        destination_ports=parse_port(dport),
    )


def _split_list(text: str) -> list[str]:
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    if depth != 0 or any(not item for item in items):
        raise Decline(f"malformed list [{text}]")
    return items


def parse_address(text: str) -> ast.Address:
    text = text.strip()
    if text.startswith("!"):
        return ast.NegatedAddress(parse_address(text[1:]))
    if text.startswith("[") and text.endswith("]"):
        return ast.AddressList(tuple(parse_address(item) for item in _split_list(text[1:-1])))
    if text == "any":
        return ast.AnyAddress()
    variable = _VARIABLE.match(text)
    if variable:
        return ast.AddressVariable(variable.group(1))
    dotted = _IPV4.match(text)
    if dotted:  # the common case, checked without building an ipaddress object
        address, _, prefix = text.partition("/")
        if all(int(octet) <= 255 for octet in address.split(".")) and int(prefix or 0) <= 32:
            return ast.IpAddress(text)
        raise Decline(f"{text!r} is not an IPv4 address or network")
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise Decline(f"{text!r} is not an address, network, variable or 'any'") from None
    if "." in text and ":" not in text and not _IPV4.match(text):
        raise Decline(f"{text!r} is not a dotted-quad address")
    return ast.IpAddress(text)


def parse_port(text: str) -> ast.Port:
    text = text.strip()
    if text.startswith("!"):
        return ast.NegatedPort(parse_port(text[1:]))
    if text.startswith("[") and text.endswith("]"):
        return ast.PortList(tuple(parse_port(item) for item in _split_list(text[1:-1])))
    if text == "any":
        return ast.AnyPort()
    variable = _VARIABLE.match(text)
    if variable:
        return ast.PortVariable(variable.group(1))
    span = _PORT_RANGE.match(text)
    if span:
        low = _port_number(span.group(1)) if span.group(1) else None
        high = _port_number(span.group(2)) if span.group(2) else None
        if low is None and high is None:
            raise Decline("port range ':' names no port")
        return ast.PortRange(low, high)
    return ast.PortNumber(_port_number(text))


def _port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise Decline(f"{text!r} is not a port number")
    return int(text)


def address_text(address: ast.Address) -> str:
    """An address in Snort's syntax."""
    return formatter.address_text(address, list_sep=",")


def port_text(port: ast.Port) -> str:
    """A port in Snort's syntax (`1024:` ranges)."""
    return formatter.port_text(port, range_sep=":", list_sep=",")


def header_text(header: ast.Header) -> str:
    return " ".join(
        (
            header.protocol,
            address_text(header.source),
            port_text(header.source_ports),
            header.direction,
            address_text(header.destination),
            port_text(header.destination_ports),
        )
    )

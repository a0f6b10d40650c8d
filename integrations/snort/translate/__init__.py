"""The translator chain: one small translator per Snort option family, each claiming options by name.

A translator reads one `RawOption` into a `RuleBuilder` (the rule being
built) or raises `Decline` when it cannot represent the value.  The importer
turns a decline, or an option nobody claims, into a diagnostic and keeps the
rule disabled with the option stored verbatim.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from integrations.snort.errors import Decline, Location
from integrations.snort.tokenize import RawOption
from rules import ast

DEFAULT_BUFFER = ast.Buffer("pkt_data")
#: Buffers Suricata inspects one instance at a time (header lines, certificates,
#: queries, files): naming one again in a rule starts a match of its own.
MULTI_INSTANCE_BUFFERS = frozenset(
    {
        "http.request_header",
        "http.response_header",
        "tls.certs",
        "dns.query",
        "file_data",
        "file.name",
    }
)


class Translator(Protocol):
    """Claims the options named in `names`; `translate` applies one of them."""

    names: frozenset[str]

    def translate(self, option: RawOption, rule: RuleBuilder) -> None: ...


@dataclass(slots=True)
class PendingContent:
    """A content whose Snort 2 style modifiers (`nocase;`, `http_uri;` ...) may still follow."""

    fields: dict[str, object]
    buffer: ast.Buffer | None = None
    location: Location | None = None


@dataclass(slots=True)
class OpenSequence:
    """The matchers on one buffer; `absent` (Suricata) is `only` (the buffer must be
    missing) or `or_else` (missing, or the matchers hold)."""

    buffer: ast.Buffer
    items: list[ast.SequenceItem | PendingContent] = field(default_factory=list)
    absent: str | None = None


#: HTTP response buffers; every other `http.` buffer belongs to the request.
HTTP_RESPONSE_BUFFERS = frozenset(
    {
        "http.response_body",
        "http.stat_code",
        "http.stat_msg",
        "http.response_line",
        "http.response_header",
        "http.server",
        "http.location",
    }
)


def missing(buffer: ast.Buffer) -> ast.Condition:
    """Suricata `absent` on an HTTP buffer: the packet carries the message the buffer
    belongs to (its request method or response status) but not `buffer`."""
    anchor = "http.stat_code" if buffer.name in HTTP_RESPONSE_BUFFERS else "http.method"
    present = (ast.BufferSize(">=", 0),)
    return ast.And(
        (ast.Not(ast.Sequence(buffer, present)), ast.Sequence(ast.Buffer(anchor), present))
    )


@dataclass(slots=True)
class Issue:
    """Why a rule cannot be imported with full semantics."""

    option: str
    message: str
    location: Location
    unsupported: bool  # True: the option itself is unknown or not evaluated


@dataclass(slots=True)
class RuleBuilder:
    """The rule being imported: header fields, condition parts in Snort order, and issues.

    `flavor` is `snort3` (HTTP buffer names are sticky) or `snort2` (they
    modify the content before them, as in Snort 2.9 and Suricata).
    """

    flavor: str
    location: Location
    title: str = ""
    sid: int | None = None
    rev: int = 1
    gid: int | None = None
    classtype: str | None = None
    priority: int | None = None
    references: list[ast.Reference] = field(default_factory=list)
    metadata: list[ast.MetadataEntry] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    tactics: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    flow: list[str] = field(default_factory=list)
    entries: list[ast.Condition | OpenSequence] = field(default_factory=list)
    bit_actions: list[ast.Flowbits] = field(default_factory=list)
    int_actions: list[ast.Flowint] = field(default_factory=list)
    thresholds: list[ast.Threshold] = field(default_factory=list)
    options: list[ast.OpaqueOption] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    sticky: ast.Buffer | None = None
    open: OpenSequence | None = None
    pending: PendingContent | None = None
    last: PendingContent | None = None  # the latest content, which modifiers still reach
    verbatim: bool = False  # after an unknown option: keep the rest as written
    sticky_at: int = 0  # len(entries) when the sticky buffer was selected
    protocol: str = ""  # the header's protocol, once read

    # ---- payload placement -------------------------------------------------

    def current_buffer(self) -> ast.Buffer:
        return self.sticky if self.sticky is not None else DEFAULT_BUFFER

    def add_item(
        self, item: ast.SequenceItem | PendingContent, buffer: ast.Buffer | None = None
    ) -> None:
        """Append a payload matcher to the sequence on `buffer` (default: the sticky one)."""
        target = buffer if buffer is not None else self.current_buffer()
        if self.open is None or self.open.buffer != target:
            self.open = OpenSequence(target)
            self.entries.append(self.open)
        self.open.items.append(item)

    def add_relative_item(self, item: ast.SequenceItem, relative: bool) -> None:
        """A non-content matcher: relative ones continue the previous match's buffer."""
        if relative and self.open is not None and self.flavor == "snort2":
            self.open.items.append(item)
        else:
            self.add_item(item)

    def set_sticky(self, buffer: ast.Buffer) -> None:
        """A sticky buffer option: later matchers inspect `buffer` from its start.

        Suricata keeps one list per buffer a rule names: naming a buffer again (one
        that is not inspected per instance) continues its list, so a relative match
        after it is relative to the buffer's earlier matches."""
        self.sticky = buffer
        self.sticky_at = len(self.entries)
        self.open = None
        self.last = None
        if self.flavor == "snort2" and buffer.name not in MULTI_INSTANCE_BUFFERS:
            for entry in self.entries:
                if isinstance(entry, OpenSequence) and entry.buffer == buffer and not entry.absent:
                    self.open = entry

    def add_transform(self, name: str) -> None:
        if self.sticky is None or (self.open is not None and self.open.items):
            raise Decline("a transform must directly follow its sticky buffer")
        self.sticky = ast.Buffer(self.sticky.name, (*self.sticky.transforms, name))

    def add_opaque(self, name: str, value: str | None) -> None:
        """An option that changes matching but that Shrike does not evaluate."""
        item = ast.OpaqueOption(name, value)
        if self.open is not None and not self.verbatim:
            self.open.items.append(item)
        else:
            self.entries.append(item)

    def add_condition(self, condition: ast.Condition) -> None:
        self.entries.append(condition)

    def start_content(self, content: PendingContent) -> None:
        self.finish_pending()
        self.pending = self.last = content

    def last_content(self) -> PendingContent:
        """The content a Snort 2 / Suricata modifier applies to: the latest one,
        even with other matchers (`isdataat`, `bsize`) written in between."""
        if self.last is None:
            raise Decline("modifier has no content before it")
        return self.last

    def finish_pending(self) -> None:
        """Place the pending content in its sequence; modifiers may still change it."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        self.add_item(pending, pending.buffer)

    def problem(self, option: RawOption, message: str, unsupported: bool) -> None:
        self.issues.append(Issue(option.name, message, option.location, unsupported))

    # ---- result ------------------------------------------------------------

    def condition(self) -> ast.Condition | None:
        parts: list[ast.Condition] = []
        for entry in self.entries:
            if isinstance(entry, OpenSequence):
                if entry.absent == "only":
                    parts.append(missing(entry.buffer))
                elif entry.items:
                    items = tuple(
                        ast.Content(**item.fields)  # type: ignore[arg-type]
                        if isinstance(item, PendingContent)
                        else item
                        for item in entry.items
                    )
                    sequence = ast.Sequence(entry.buffer, items)
                    if entry.absent == "or_else":
                        parts.append(ast.Or((missing(entry.buffer), sequence)))
                    else:
                        parts.append(sequence)
            else:
                parts.append(entry)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return ast.And(tuple(parts))


def build_index(translators: Iterable[Translator]) -> dict[str, Translator]:
    """Option name -> translator; two translators claiming one name is a programming error."""
    index: dict[str, Translator] = {}
    for translator in translators:
        for name in translator.names:
            if name in index:
                raise ValueError(f"option {name!r} claimed by two translators")
            index[name] = translator
    return index

"""Snort classtypes, their default priorities, and the Shrike severity a rule gets from them.

Snort gives an alert the rule's `priority:N` or, without one, the default priority of
its `classtype` (`classification.config`, `classifications` in Snort 3's
`snort_defaults.lua`); 1 is the most urgent.  Emerging Threats rules also say how bad a
hit is in their metadata (`signature_severity Major`), which then decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from rules import ast

#: Default priority of each standard classtype: Snort's table, then the classtypes the
#: Emerging Threats `classification.config` adds.
CLASSTYPE_PRIORITY: Mapping[str, int] = MappingProxyType(
    {
        # Snort
        "not-suspicious": 3,
        "unknown": 3,
        "bad-unknown": 2,
        "attempted-recon": 2,
        "successful-recon-limited": 2,
        "successful-recon-largescale": 2,
        "attempted-dos": 2,
        "successful-dos": 2,
        "attempted-user": 1,
        "unsuccessful-user": 1,
        "successful-user": 1,
        "attempted-admin": 1,
        "successful-admin": 1,
        "rpc-portmap-decode": 2,
        "shellcode-detect": 1,
        "string-detect": 3,
        "suspicious-filename-detect": 2,
        "suspicious-login": 2,
        "system-call-detect": 2,
        "tcp-connection": 4,
        "trojan-activity": 1,
        "unusual-client-port-connection": 2,
        "network-scan": 3,
        "denial-of-service": 2,
        "non-standard-protocol": 2,
        "protocol-command-decode": 3,
        "web-application-activity": 2,
        "web-application-attack": 1,
        "misc-activity": 3,
        "misc-attack": 2,
        "icmp-event": 3,
        "inappropriate-content": 1,
        "policy-violation": 1,
        "default-login-attempt": 2,
        "sdf": 2,
        "file-format": 1,
        "malware-cnc": 1,
        "client-side-exploit": 1,
        # Emerging Threats
        "targeted-activity": 1,
        "exploit-kit": 1,
        "external-ip-check": 2,
        "domain-c2": 1,
        "pup-activity": 2,
        "credential-theft": 1,
        "social-engineering": 2,
        "coin-mining": 2,
        "command-and-control": 1,
    }
)

#: Shrike severity of Snort priorities 1 to 4 (priorities above 4 count as 4).
PRIORITY_SEVERITY: Mapping[int, str] = MappingProxyType(
    {1: "high", 2: "medium", 3: "low", 4: "info"}
)

#: The metadata key Emerging Threats rules state their severity with, and its values.
SIGNATURE_SEVERITY_KEY = "signature_severity"
SIGNATURE_SEVERITY: Mapping[str, str] = MappingProxyType(
    {"critical": "critical", "major": "high", "minor": "low", "informational": "info"}
)


def priority_severity(priority: int) -> str | None:
    """The severity of a Snort priority; None for 0, which is no priority."""
    if priority < 1:
        return None
    return PRIORITY_SEVERITY[min(priority, 4)]


def derive_severity(
    priority: int | None, classtype: str | None, metadata: Iterable[ast.MetadataEntry] = ()
) -> str | None:
    """A rule's severity: its `signature_severity` metadata, else its priority, else its
    classtype's default priority; None when none of them says."""
    for entry in metadata:
        if entry.key == SIGNATURE_SEVERITY_KEY:
            found = SIGNATURE_SEVERITY.get(entry.value.strip().lower())
            if found is not None:
                return found
    if priority is None and classtype is not None:
        priority = CLASSTYPE_PRIORITY.get(classtype.lower())
    return priority_severity(priority) if priority is not None else None

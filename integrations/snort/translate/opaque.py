"""Options Shrike knows by name but does not evaluate: kept verbatim, the rule kept disabled.

Each of these changes what a rule matches (protocol state, DCE/RPC
interfaces, ASN.1 checks, ...), so a rule using one cannot be imported with
full semantics.  Naming them here (rather than leaving them unclaimed) keeps
the surrounding payload matchers intact in the imported rule.
"""

from __future__ import annotations

from integrations.snort.tokenize import RawOption
from integrations.snort.translate import RuleBuilder

NOT_EVALUATED = frozenset(
    {
        "ssl_state",
        "ssl_version",
        "dce_iface",
        "dce_opnum",
        "asn1",
        "app-layer-event",
        "decode-event",
        "stream-event",
        "sip_method",
        "sip_stat_code",
        "cvs",
        "rpc",
        "icmp_id_list",
        "stream_reassemble",
        "file_type",
        "appids",
        "tls.version",
        "ssh.protoversion",
        "ja3.hash_list",
    }
)


class NotEvaluated:
    names = NOT_EVALUATED

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        rule.add_opaque(option.name, option.value)
        rule.problem(option, "Shrike does not evaluate this option", unsupported=True)


TRANSLATORS = (NotEvaluated(),)

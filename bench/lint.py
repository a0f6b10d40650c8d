"""Benchmark: parse + lint throughput of Shrike rules on one core, with two parsers beside it.

    python bench/lint.py [--rules 20000] [--repeats 3] [--seed 7]

Generates a ruleset of realistic shape (HTTP, DNS, TLS, TCP payload, scan windows,
flowbit chains, about a fifth of the rules with a regex), then times parsing,
linting, and both, taking the median of the repeats, pinned to one CPU. The
stages take turns (one repeat of each per round), so a slow spell of a shared
machine weighs on all of them alike. Each lint repeat starts with an empty
regex-verdict cache, as a fresh `shrike lint` does.
Peers in the same run: Shrike's Lark-only parse path (what the hand-written fast
path replaces), and, when ../shared/data/rulesets is present, idstools parsing
the same number of Emerging Threats Snort rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path; its other scripts must not
# shadow library modules, and the repository root must be importable.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import io
import os
import random
import statistics
import string
import time
from collections.abc import Callable

from rules import _compiled, _native_tokens, ast, parse_collecting
from rules._fast_parser import FastParser
from rules.attack import load_catalog
from rules.lint import libhs
from rules.lint.config import LintConfig
from rules.lint.runner import Linter, ParsedSource
from rules.parser import RuleParser, _chunk_bounds

TARGET_RULES_PER_SECOND = 10_000
SHARED_RULESETS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rulesets"

HTTP_PATHS = [
    "/wp-admin/",
    "/cgi-bin/",
    "/api/v1/",
    "/admin/",
    "/login.php",
    "/upload/",
    "/images/",
]
USER_AGENTS = [
    "Mozilla/5.0 (compatible; ",
    "curl/",
    "python-requests/",
    "Go-http-client/",
    "WinHTTP",
]
DOMAINS = [".top", ".xyz", ".duckdns.org", ".ngrok.io", ".onion.ws", ".no-ip.biz"]


def _word(rng: random.Random, low: int = 4, high: int = 12) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


def _hex(rng: random.Random, count: int) -> str:
    return "|" + " ".join(f"{rng.randrange(256):02X}" for _ in range(count)) + "|"


def generate_ruleset(count: int, seed: int) -> str:
    """Rule text shaped like a production ruleset: mostly payload rules with literals."""
    rng = random.Random(seed)
    catalog = load_catalog()
    techniques = [t for t in catalog.current_techniques()]
    blocks = ["addresses WEB_SERVERS = [10.0.0.0/24, 10.0.1.0/24]\n"]
    for index in range(count):
        rule_id = 9_100_000 + index
        technique = rng.choice(techniques)
        tactic = catalog.tactic(technique.tactics[0]).tactic_id
        head = (
            f'rule "ET-like signature {index} {_word(rng)} {_word(rng)}" {{\n'
            f"  id {rule_id}\n  rev {rng.randint(1, 9)}\n"
            f"  severity {rng.choice(['low', 'medium', 'high', 'critical'])}\n"
            f"  attack {technique.technique_id}\n  tactic {tactic}\n"
        )
        kind = rng.random()
        if kind < 0.40:
            body = (
                f"  match http from $EXTERNAL_NET to $HOME_NET port $HTTP_PORTS to_server established\n"
                f'  where http.method == "{rng.choice(["GET", "POST"])}"\n'
                f'    and http.uri {{ contains "{rng.choice(HTTP_PATHS)}{_word(rng)}" nocase'
                f' contains ".{rng.choice(["php", "asp", "jsp", "cgi"])}?" distance 0 }}\n'
            )
            if rng.random() < 0.4:
                body += (
                    f"    and http.uri matches /\\/{_word(rng, 3, 6)}[a-z0-9]{{{rng.randint(4, 16)}}}"
                    f"\\.(php|asp)\\?id=\\d+/i\n"
                )
            if rng.random() < 0.3:
                body += f'    and http.user_agent starts_with "{rng.choice(USER_AGENTS)}"\n'
        elif kind < 0.55:
            body = (
                "  match dns from $HOME_NET to any port 53\n"
                f'  where dns.query ends_with "{_word(rng, 5, 10)}{rng.choice(DOMAINS)}" nocase\n'
            )
        elif kind < 0.65:
            body = (
                "  match tls from $HOME_NET to $EXTERNAL_NET to_server established\n"
                f'  where tls.sni contains "{_word(rng, 6, 14)}" nocase\n'
            )
        elif kind < 0.85:
            body = (
                f"  match tcp from $EXTERNAL_NET to $HOME_NET port {rng.choice([21, 25, 139, 445, 1433, 3389])}"
                " to_server established\n"
                f"  where dsize > {rng.randint(20, 200)}\n"
                f"    and pkt_data {{ contains {_hex(rng, rng.randint(4, 8))} offset {rng.randint(0, 8)}"
                f" depth {rng.randint(16, 64)}\n"
                f'      contains "{_word(rng)}" distance {rng.randint(0, 16)} within {rng.randint(32, 128)}\n'
            )
            if rng.random() < 0.5:
                body += (
                    f"      byte_test(bytes 2, > {rng.randint(256, 4096)}, offset 0, relative)\n"
                )
            if rng.random() < 0.3:
                body += (
                    f"      matches /{_word(rng, 3, 5)}[\\x00-\\x1f]{{2,}}{_word(rng, 2, 4)}/s\n"
                )
            body += "    }\n"
        elif kind < 0.93:
            bit = f"stage_{index}"
            body = (
                "  match tcp from $HOME_NET to $EXTERNAL_NET to_server established\n"
                f'  where pkt_data starts_with "{_word(rng, 6, 10)}"\n'
                f"  flowbits set {bit}\n"
                "}\n"
                f'rule "ET-like second stage {index}" {{\n'
                f"  id {rule_id + 500_000}\n  severity high\n"
                f"  attack {technique.technique_id}\n  tactic {tactic}\n"
                "  match tcp from $EXTERNAL_NET to $HOME_NET to_client established\n"
                f'  where flowbits isset {bit} and pkt_data contains "{_word(rng, 6, 10)}"\n'
            )
        else:
            body = (
                "  match tcp from any to $HOME_NET\n"
                "  where tcp.flags == S\n"
                f"  window {rng.choice([10, 30, 60])}s by src.ip: distinct(dst.port) >= {rng.randint(10, 50)}\n"
            )
        blocks.append(head + body + "}\n")
    return "\n".join(blocks)


def _round_robin(
    stages: list[tuple[Callable[[], object], Callable[[], object] | None]], repeats: int
) -> tuple[list[tuple[float, float]], list[object]]:
    """Median wall-clock and CPU seconds of each stage's action, and its last result.

    The stages take turns, one repeat each per round, so a slow spell of a shared
    machine falls on every stage alike instead of on whichever ran then. The wall
    clock also counts time the process waited for the core; the CPU time of this
    process does not, so both are reported."""
    walls: list[list[float]] = [[] for _ in stages]
    cpus: list[list[float]] = [[] for _ in stages]
    results: list[object] = [None] * len(stages)
    for _ in range(repeats):
        for n, (action, before) in enumerate(stages):
            if before is not None:
                before()
            wall, cpu = time.perf_counter(), time.process_time()
            results[n] = action()
            cpus[n].append(time.process_time() - cpu)
            walls[n].append(time.perf_counter() - wall)
    medians = [
        (statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus, strict=True)
    ]
    return medians, results


def snort_rule_lines(count: int) -> list[str]:
    lines: list[str] = []
    folder = SHARED_RULESETS / "et-open-snort-2.9.0"
    for path in sorted(folder.glob("*.rules")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("alert ", "drop ")):
                lines.append(line)
                if len(lines) == count:
                    return lines
    return lines


def _forget_regex_verdicts() -> None:
    libhs._VERDICTS.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        # One core; the last one, since other benchmarks pin themselves to the first.
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})

    text = generate_ruleset(args.rules, args.seed)
    variables = frozenset({"HOME_NET", "EXTERNAL_NET", "HTTP_PORTS"})
    lark_only = RuleParser(fast=False)

    def parse() -> ParsedSource:
        result = parse_collecting(text, "generated.shrike")
        return ParsedSource(
            "generated.shrike", text, tuple(result.file.statements), tuple(result.errors)
        )

    parsed = parse()
    rule_count = len(parsed.rules)
    if parsed.errors:
        print(f"generator produced {len(parsed.errors)} parse errors, first: {parsed.errors[0]}")
        return 1
    if lark_only.parse_collecting(text, "generated.shrike").file != parsed_file(parsed):
        print("the fast path and the Lark path disagree on the generated rules")
        return 1
    fast = FastParser(text, "generated.shrike")
    chunks = _chunk_bounds(text)
    declined = sum(fast.parse_chunk(start, end) is None for _, start, end in chunks)

    def lint_with(config: LintConfig) -> Callable[[], object]:
        linter = Linter(config, predefined_variables=variables)
        return lambda: linter.lint([parsed])

    def parse_and_lint() -> object:
        return Linter(LintConfig(), predefined_variables=variables).lint([parse()])

    del fast  # its token lists (a million objects) must not weigh on the timed stages

    snort_lines = snort_rule_lines(rule_count) if SHARED_RULESETS.is_dir() else []
    snort_text = "\n".join(snort_lines)
    peer_note = ""
    try:
        from idstools import rule as idstools_rule
    except ImportError:
        idstools_rule = None
        peer_note = "idstools not installed (pip install idstools): no peer figure"
    else:
        if not snort_lines:
            peer_note = f"no Snort rules at {SHARED_RULESETS}: no peer figure"

    # (label, rules, action, set-up before each repeat untimed)
    stages: list[tuple[str, int, Callable[[], object], Callable[[], object] | None]] = [
        ("shrike parse", rule_count, parse, None),
        ("shrike lint (all checks)", rule_count, lint_with(LintConfig()), _forget_regex_verdicts),
        (
            "shrike lint (without PRF003)",
            rule_count,
            lint_with(LintConfig(ignore=("PRF003",))),
            None,
        ),
        ("shrike parse + lint", rule_count, parse_and_lint, _forget_regex_verdicts),
        (
            "peer: shrike parse, Lark path only",
            rule_count,
            lambda: lark_only.parse_collecting(text, "generated.shrike"),
            None,
        ),
    ]
    if idstools_rule is not None and snort_lines:
        stages.append(
            (
                "peer: idstools parse (ET Open Snort)",
                len(snort_lines),
                lambda: idstools_rule.parse_fileobj(io.StringIO(snort_text)),
                None,
            )
        )
    timed, results = _round_robin(
        [(action, before) for _, _, action, before in stages], args.repeats
    )
    rows = [
        (label, count, seconds) for (label, count, _, _), seconds in zip(stages, timed, strict=True)
    ]
    if len(stages) > 5:  # idstools: the rules it parsed
        rows[5] = (rows[5][0], len(results[5]), rows[5][2])  # type: ignore[arg-type]
    parse_seconds, lint_seconds, no_regex_seconds, both_seconds, lark_seconds = timed[:5]
    report = results[1]

    print(
        f"{rule_count} generated rules, {len(text) / 1e6:.1f} MB, median of {args.repeats} "
        "rounds (the stages take turns), one core"
    )
    print(f"{'stage':<42} {'rules':>7} {'wall s':>8} {'rules/s':>9} {'cpu s':>8} {'rules/s':>9}")
    for label, count, (wall, cpu) in rows:
        print(
            f"{label:<42} {count:>7} {wall:>8.3f} {count / wall:>9,.0f} {cpu:>8.3f} {count / cpu:>9,.0f}"
        )
    if peer_note:
        print(peer_note)
    print(
        f"fast parse path: {len(chunks) - declined} of {len(chunks)} chunks "
        f"({declined} declined to Lark), {lark_seconds[1] / parse_seconds[1]:.1f}x the Lark path; "
        f"tokens cut by the {_native_tokens.status()}"
    )
    print(f"parser and checks: {_compiled.status()}")
    diagnostics = getattr(report, "diagnostics", ())
    print(f"lint found {len(diagnostics)} diagnostics in the generated set")
    regexes = {
        (regex.pattern, regex.flags) for rule in parsed.rules for regex in _rule_regexes(rule)
    }
    found = libhs.analyser()
    how = (
        "hs_expression_info"
        if isinstance(found, libhs.PatternAnalyser)
        else f"a full compile ({found})"
    )
    check_ms = (lint_seconds[1] - no_regex_seconds[1]) * 1000 / max(len(regexes), 1)
    plain = sum(libhs.plainly_supported(pattern.encode()) for pattern, _ in regexes)
    print(
        f"PRF003 checks {len(regexes)} distinct regexes, {plain} cleared by their syntax and "
        f"the rest with {how}, about {check_ms:.2f} ms each"
    )
    if len(rows) > 5:
        peer_rate = rows[5][1] / rows[5][2][1]
        print(
            f"parse + lint against idstools in the same rounds (CPU time): "
            f"{rule_count / both_seconds[1] / peer_rate:.2f}x its Snort rules/s"
        )
    for clock, seconds in (("wall clock", both_seconds[0]), ("CPU time", both_seconds[1])):
        rate = rule_count / seconds
        verdict = "meets" if rate >= TARGET_RULES_PER_SECOND else "misses"
        print(
            f"parse + lint ({clock}): {rate:,.0f} rules/s {verdict} the "
            f"{TARGET_RULES_PER_SECOND:,} rules/s target"
        )
    return 0


def parsed_file(parsed: ParsedSource) -> ast.RuleFile:
    return ast.RuleFile(parsed.path, parsed.statements)


def _rule_regexes(rule: ast.Rule) -> list[ast.Regex]:
    from rules.lint.walk import conditions

    return [
        item
        for node in conditions(rule.condition)
        if isinstance(node, ast.Sequence)
        for item in node.items
        if isinstance(item, ast.Regex)
    ]


if __name__ == "__main__":
    sys.exit(main())

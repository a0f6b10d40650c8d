"""Suricata-verify conformance: run each case of a suricata-verify folder through Shrike
and count the alert checks met.

A folder is shaped like ../shared/data/suricata-verify: `index.json` lists the cases
(pcap, rules file, Suricata args, and `alert_checks`: how many EVE alert records must
match all keys of `match`). Shrike imports the Suricata rules, runs the matcher with
the inspection buffers on the pcap (checksums verified unless the case passes
`-k none`), writes EVE alert records, and compares each check's count.

    python3 bench/suricata_verify.py ../shared/data/suricata-verify [--case NAME] [-v]

The last line reads `alert checks met: M/N`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds a script named like a standard-library module; keep it off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.eve import alert_record  # noqa: E402
from engine.match import Matcher, compile_ruleset, load_rules  # noqa: E402
from engine.match.loading import (  # noqa: E402
    apply_thresholds,
    default_variables,
    read_threshold_config,
)
from engine.match.stream import checksum_validator, iter_matches  # noqa: E402
from engine.sources import open_source  # noqa: E402


@dataclass
class CaseResult:
    name: str
    met: int = 0
    total: int = 0
    error: str = ""
    failures: list[str] = field(default_factory=list)
    not_imported: list[str] = field(default_factory=list)  # why rules were left disabled

    @property
    def passed(self) -> bool:
        return not self.error and self.met == self.total


def _lookup(record: dict[str, Any], dotted: str) -> Any:
    """The value at a suricata-verify field path: `a.b`, `vlan[0]` (a list item),
    `packet.__len` (the length of what precedes)."""
    value: Any = record
    for part in dotted.split("."):
        if part == "__len":
            return len(value) if isinstance(value, str | list | dict) else -1
        index = None
        if part.endswith("]") and "[" in part:
            part, _, rest = part.partition("[")
            index = int(rest[:-1])
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
        if index is not None:
            if not isinstance(value, list) or index >= len(value):
                return _MISSING
            value = value[index]
    return value


_MISSING = object()


#: The Suricata version whose expectations are checked: a check that `requires` another
#: version range (`min-version`, `lt-version`, ...) does not count.
TARGET_VERSION = (8, 0, 0)


def _version(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in str(text).split(".") if p.isdigit()]
    return tuple(parts + [0] * (3 - len(parts)))


def applies(requires: dict[str, Any] | None, version: tuple[int, ...] = TARGET_VERSION) -> bool:
    """Whether a check's `requires` version bounds admit `version` (other requirements,
    such as features, are not version bounds and are taken as met)."""
    for key, value in (requires or {}).items():
        bound = _version(value)
        if key == "min-version" and version < bound:
            return False
        if key == "lt-version" and version >= bound:
            return False
        if key == "gt-version" and version <= bound:
            return False
        if (
            key == "version"
            and version[: len(str(value).split("."))] != bound[: len(str(value).split("."))]
        ):
            return False
    return True


def _matches(record: dict[str, Any], want: dict[str, Any]) -> bool:
    for key, expected in want.items():
        if key == "not-has-key":
            if _lookup(record, str(expected)) is not _MISSING:
                return False
            continue
        got = _lookup(record, key)
        if got is _MISSING:
            return False
        if got != expected and str(got) != str(expected):
            return False
    return True


def checksum_mode(args: list[str], pcap: Path) -> str:
    """`-k none` turns verification off; otherwise Suricata's pcap default, `auto`:
    verification is dropped for a capture where more than 1 packet in 10 has a bad
    checksum (checksum offloading on the capturing host)."""
    joined = " ".join(args)
    if "-k none" in joined:
        return "none"
    return "none" if _bad_checksum_share(pcap) > 0.1 else "all"


def _bad_checksum_share(pcap: Path) -> float:
    from engine.decode import decode
    from engine.inspect import ChecksumMode, bad_checksum_packets

    bad = total = 0
    with open_source("pcap", str(pcap)) as source:
        while (batch := source.next_batch()) is not None:
            if len(batch):
                bad += int(bad_checksum_packets(decode(batch), ChecksumMode.ALL).sum())
                total += len(batch)
    return bad / total if total else 0.0


def _size(text: str) -> int:
    """`1mb`, `64kb`, `4096`: a Suricata size setting in bytes."""
    units = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}
    low = text.strip().lower()
    for suffix, factor in units.items():
        if low.endswith(suffix):
            return int(float(low[: -len(suffix)]) * factor)
    return int(low)


def _inspect_config(args: str) -> Any:
    """The inspector's configuration, with a case's libhtp body limits (the larger of
    `request-body-limit` and `response-body-limit`) as the body depth."""
    from engine.inspect import InspectConfig

    limits = [
        _size(arg.split("=", 1)[1])
        for arg in args.split()
        if arg.split("=", 1)[0].endswith(("request-body-limit", "response-body-limit"))
    ]
    return InspectConfig(http_body_depth=max(limits)) if limits else InspectConfig()


def _threshold_file(folder: Path, args: list[str]) -> Path | None:
    """The `--set threshold-file=...` of a case's arguments (`${TEST_DIR}` is its folder)."""
    for arg in " ".join(args).split():
        if arg.startswith("threshold-file="):
            path = Path(arg.split("=", 1)[1].replace("${TEST_DIR}", str(folder)))
            return path if path.exists() else None
    return None


def run_case(folder: Path, case: dict[str, Any], checksums: str = "case") -> CaseResult:
    checks = [c for c in case.get("alert_checks", []) if applies(c.get("requires"))]
    result = CaseResult(case["name"], total=len(checks))
    rules_path = folder / case["rules"] if case.get("rules") else None
    pcap_path = folder / case["pcap"]
    try:
        rules, table, notes = load_rules([rules_path] if rules_path else [], default_variables())
        threshold_file = _threshold_file(folder, case.get("args", []))
        if threshold_file is not None:
            entries, th_notes = read_threshold_config(
                threshold_file.read_text(), str(threshold_file)
            )
            rules = apply_thresholds(rules, entries)
            result.not_imported += th_notes
        disabled = {r.id for r in rules if not r.enabled}
        result.not_imported = [n for n in notes if any(f"sid {sid}:" in n for sid in disabled)]
        compiled = compile_ruleset(rules, table)
        result.not_imported += [str(d) for d in compiled.diagnostics]
        from engine.inspect import Inspector

        args = " ".join(case.get("args", []))
        matcher = Matcher(
            compiled,
            inspector=Inspector(_inspect_config(args)),
            midstream="stream.midstream=true" in args,
            async_oneside="stream.async-oneside=true" in args,
            raw_stream=True,
            bad_checksum_packets=True,
        )
        records: list[dict[str, Any]] = []
        mode = checksum_mode(case.get("args", []), pcap_path) if checksums == "case" else checksums
        validator = checksum_validator(mode)
        with open_source("pcap", str(pcap_path)) as source:
            for batch in iter_matches(source, matcher, checksums=validator):
                records.extend(alert_record(a) for a in batch.alerts)
        records.extend(alert_record(a) for a in matcher.finish())
    except Exception as exc:  # one broken case must not stop the run
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    for check in checks:
        want = check["match"]
        got = sum(1 for r in records if _matches(r, want))
        if got == check["count"]:
            result.met += 1
        else:
            keys = {k: v for k, v in want.items() if k != "event_type"}
            result.failures.append(f"{keys}: expected {check['count']}, got {got}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--case", action="append", help="run only these cases (repeatable)")
    ap.add_argument(
        "--checksum-mode",
        choices=["case", "all", "none"],
        default="case",
        help="verify checksums as each case's args say (default), always, or never",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print each failed check")
    args = ap.parse_args(argv)
    index_path = args.folder / "index.json"
    if not index_path.exists():
        print(f"suricata_verify: no index.json in {args.folder}", file=sys.stderr)
        return 2
    cases = json.loads(index_path.read_text())["tests"]
    if args.case:
        cases = [c for c in cases if c["name"] in args.case]
    met = total = passed = 0
    started = time.perf_counter()
    for case in cases:
        res = run_case(args.folder / case["name"], case, args.checksum_mode)
        met += res.met
        total += res.total
        passed += res.passed
        status = "pass" if res.passed else "FAIL"
        detail = f" ({res.error})" if res.error else ""
        if not res.passed and res.not_imported:
            detail += (
                " [rules not imported: "
                + "; ".join(n.split(": ", 1)[-1] for n in res.not_imported[:3])
                + "]"
            )
        print(f"{status} {res.name}: {res.met}/{res.total}{detail}")
        if args.verbose and not res.passed:
            for f in res.failures:
                print(f"     {f}")
    elapsed = time.perf_counter() - started
    print(f"cases passed: {passed}/{len(cases)} in {elapsed:.0f}s")
    print(f"alert checks met: {met}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

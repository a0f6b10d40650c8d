"""Regenerates the packaged ATT&CK catalog (`enterprise-attack.json`) from MITRE's technique tables.

Run by a maintainer when ATT&CK publishes a new release:

    python -m rules.attack.refresh PATH/TO/attack-dir [--version 18.1]

PATH/TO/attack-dir holds `enterprise-techniques.csv` and `tactics.csv` derived from
mitre/cti (see that folder's PROVENANCE.md). The output keeps only what the linter
and the coverage export need: ids, names, tactics and the deprecated/revoked flags.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("enterprise-attack.json")

# MITRE's licence asks every copy to carry its copyright designation and licence text.
MITRE_COPYRIGHT = (
    "© 2025 The MITRE Corporation. This work is reproduced and distributed with the "
    "permission of The MITRE Corporation."
)
MITRE_LICENSE = (
    "The MITRE Corporation (MITRE) hereby grants you a non-exclusive, royalty-free license "
    "to use ATT&CK® for research, development, and commercial purposes. Any copy you make "
    "for such purposes is authorized provided that you reproduce MITRE's copyright "
    "designation and this license in any such copy."
)


def _flag(value: str, *, column: str, row: int, path: Path) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError(f"{path}:{row}: column {column!r} must be true or false, got {value!r}")


def build_catalog_document(source_dir: Path, attack_version: str) -> dict[str, object]:
    """Reads the two CSV tables and returns the JSON document the loader expects."""
    tactics_path = source_dir / "tactics.csv"
    techniques_path = source_dir / "enterprise-techniques.csv"
    tactics: list[list[str]] = []
    with tactics_path.open(newline="", encoding="utf-8") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            if _flag(row["deprecated"], column="deprecated", row=row_number, path=tactics_path):
                continue
            tactics.append([row["tactic_id"], row["short_name"], row["name"]])
    known_tactics = {short_name for _, short_name, _ in tactics}
    techniques: list[list[object]] = []
    with techniques_path.open(newline="", encoding="utf-8") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            technique_tactics = [t for t in row["tactics"].split(";") if t]
            unknown = sorted(set(technique_tactics) - known_tactics)
            if unknown:
                raise ValueError(
                    f"{techniques_path}:{row_number}: {row['technique_id']} names unknown "
                    f"tactics {unknown}"
                )
            flags = {
                column: _flag(row[column], column=column, row=row_number, path=techniques_path)
                for column in ("deprecated", "revoked")
            }
            techniques.append(
                [
                    row["technique_id"],
                    row["name"],
                    technique_tactics,
                    flags["deprecated"],
                    flags["revoked"],
                ]
            )
    techniques.sort(key=lambda entry: str(entry[0]))
    return {
        "domain": "enterprise-attack",
        "attack_version": attack_version,
        "source": "mitre/cti enterprise-attack (attack-pattern, x-mitre-tactic, x-mitre-matrix)",
        "copyright": MITRE_COPYRIGHT,
        "license": MITRE_LICENSE,
        "tactic_columns": ["tactic_id", "short_name", "name"],
        "tactics": tactics,
        "technique_columns": ["technique_id", "name", "tactics", "deprecated", "revoked"],
        "techniques": techniques,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_dir", type=Path)
    parser.add_argument("--version", default="18.1", help="ATT&CK release of the tables")
    parser.add_argument("-o", "--output", type=Path, default=CATALOG_FILE)
    args = parser.parse_args(argv)
    try:
        document = build_catalog_document(args.source_dir, args.version)
    except (OSError, KeyError, ValueError) as error:
        print(f"refresh: {error}", file=sys.stderr)
        return 2
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # One technique per line keeps diffs between ATT&CK releases readable.
    text = text.replace('],["T', '],\n["T')
    args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

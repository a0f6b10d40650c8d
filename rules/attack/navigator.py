"""ATT&CK Navigator layers (layer format 4.5) describing which techniques a ruleset covers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rules import ast
from rules.attack.catalog import AttackCatalog, AttackCatalogError

LAYER_FORMAT_VERSION = "4.5"
# The Navigator refuses layer format 4.5 from releases older than this.
NAVIGATOR_VERSION = "5.1.0"
COVERED_COLORS = ("#c6dbef", "#2171b5")  # light to dark blue: one rule .. most rules


@dataclass(frozen=True, slots=True)
class CoveredTechnique:
    """One rule's claim that it detects a technique, optionally under one tactic."""

    technique_id: str
    rule_label: str  # e.g. "9000001 TCP SYN scan from one source"
    tactic: str | None = None  # tactic short name; None means every tactic of the technique


@dataclass(frozen=True)
class CoverageLayer:
    layer: dict[str, object]  # the Navigator JSON document
    skipped: tuple[tuple[CoveredTechnique, str], ...]  # claims left out, with the reason


def build_coverage_layer(
    claims: Iterable[CoveredTechnique],
    catalog: AttackCatalog,
    *,
    name: str = "Shrike ruleset coverage",
    description: str = "",
) -> CoverageLayer:
    """Scores each technique by the number of rules that claim it.

    Claims the catalog cannot place (unknown, revoked or deprecated techniques, unknown
    tactics or a tactic the technique does not belong to) are not drawn: they are
    returned in `skipped` so the caller can report them.
    """
    rules_by_cell: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    skipped: list[tuple[CoveredTechnique, str]] = []
    for claim in claims:
        try:
            technique = catalog.technique(claim.technique_id)
            tactic_name = None if claim.tactic is None else catalog.tactic(claim.tactic).short_name
        except AttackCatalogError as error:
            skipped.append((claim, str(error)))
            continue
        if technique.revoked or technique.deprecated:
            state = "revoked" if technique.revoked else "deprecated"
            skipped.append((claim, f"{technique.technique_id} is {state} in ATT&CK"))
            continue
        if tactic_name is not None and tactic_name not in technique.tactics:
            skipped.append(
                (claim, f"{technique.technique_id} does not belong to tactic {tactic_name}")
            )
            continue
        rules_by_cell[(technique.technique_id, tactic_name)].add(claim.rule_label)

    parents_with_covered_children = {
        technique_id.split(".", 1)[0] for technique_id, _ in rules_by_cell if "." in technique_id
    }
    entries: list[dict[str, object]] = []
    for (technique_id, tactic_name), rule_labels in sorted(
        rules_by_cell.items(), key=lambda item: (item[0][0], item[0][1] or "")
    ):
        labels = sorted(rule_labels)
        entry: dict[str, object] = {"techniqueID": technique_id}
        if tactic_name is not None:
            entry["tactic"] = tactic_name
        entry.update(
            {
                "score": len(labels),
                "comment": f"{len(labels)} rule(s): " + "; ".join(labels),
                "enabled": True,
                "metadata": [{"name": "rule", "value": label} for label in labels],
            }
        )
        if technique_id in parents_with_covered_children:
            entry["showSubtechniques"] = True
        entries.append(entry)
    # Parents whose sub-techniques are covered are expanded so the coverage is visible.
    listed = {technique_id for technique_id, _ in rules_by_cell}
    for parent_id in sorted(parents_with_covered_children - listed):
        entries.append({"techniqueID": parent_id, "showSubtechniques": True})
    entries.sort(key=lambda entry: (str(entry["techniqueID"]), str(entry.get("tactic", ""))))

    max_score = max((len(labels) for labels in rules_by_cell.values()), default=1)
    layer: dict[str, object] = {
        "name": name,
        "versions": {
            "attack": catalog.attack_version.split(".", 1)[0],
            "navigator": NAVIGATOR_VERSION,
            "layer": LAYER_FORMAT_VERSION,
        },
        "domain": catalog.domain,
        "description": description,
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True},
        "hideDisabled": False,
        "techniques": entries,
        # Navigator requires maxValue > minValue, even for a single-rule ruleset.
        "gradient": {"colors": list(COVERED_COLORS), "minValue": 1, "maxValue": max(max_score, 2)},
        "legendItems": [],
        "metadata": [
            {"name": "generator", "value": "shrike attack coverage"},
            {"name": "covered techniques", "value": str(len(listed))},
        ],
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
    }
    return CoverageLayer(layer=layer, skipped=tuple(skipped))


def claims_from_rules(rules: Iterable[ast.Rule], catalog: AttackCatalog) -> list[CoveredTechnique]:
    """What each enabled rule claims to cover.

    A technique is placed under the rule's tactics it belongs to; a rule without
    tactics (or whose tactics do not fit) claims the technique under all its tactics.
    """
    claims: list[CoveredTechnique] = []
    for rule in rules:
        if not rule.enabled:
            continue
        label = f"{rule.id} {rule.title}"
        rule_tactics = set()
        for reference in rule.tactics:
            try:
                rule_tactics.add(catalog.tactic(reference).short_name)
            except AttackCatalogError:
                continue
        for technique_id in dict.fromkeys(rule.techniques):
            fitting: list[str] = []
            if technique_id in catalog and rule_tactics:
                own = catalog.technique(technique_id).tactics
                fitting = [tactic for tactic in own if tactic in rule_tactics]
            if fitting:
                claims.extend(CoveredTechnique(technique_id, label, tactic) for tactic in fitting)
            else:
                claims.append(CoveredTechnique(technique_id, label))
    return claims

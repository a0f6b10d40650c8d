"""The MITRE ATT&CK Enterprise catalog: tactics, techniques and which tactics each technique serves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

TECHNIQUE_ID_PATTERN = re.compile(r"^T\d{4}(?:\.\d{3})?$")
TACTIC_ID_PATTERN = re.compile(r"^TA\d{4}$")


class AttackCatalogError(LookupError):
    """A technique or tactic the catalog does not know, or a catalog file that cannot be read."""


@dataclass(frozen=True, slots=True)
class Tactic:
    tactic_id: str  # TA0007
    short_name: str  # discovery (the name rules and Navigator layers use)
    name: str  # Discovery


@dataclass(frozen=True, slots=True)
class Technique:
    technique_id: str  # T1046 or T1059.001
    name: str
    tactics: tuple[str, ...]  # tactic short names, in catalog order
    deprecated: bool
    revoked: bool

    @property
    def is_subtechnique(self) -> bool:
        return "." in self.technique_id

    @property
    def parent_id(self) -> str:
        """The technique a sub-technique refines; a technique is its own parent."""
        return self.technique_id.split(".", 1)[0]

    @property
    def is_current(self) -> bool:
        return not (self.deprecated or self.revoked)


@dataclass(frozen=True)
class AttackCatalog:
    """One ATT&CK release. Lookups are by technique id and by tactic id or name."""

    attack_version: str
    domain: str
    tactics: tuple[Tactic, ...]
    techniques: Mapping[str, Technique]
    # Every spelling `tactic()` accepts, folded, to its Tactic (built once; lint asks per rule).
    _tactic_index: Mapping[str, Tactic] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Tactic] = {}
        for tactic in self.tactics:
            for spelling in (tactic.tactic_id, tactic.short_name, tactic.name):
                index[_fold_tactic(spelling)] = tactic
        object.__setattr__(self, "_tactic_index", index)

    def __contains__(self, technique_id: object) -> bool:
        return technique_id in self.techniques

    def __iter__(self) -> Iterator[Technique]:
        return iter(self.techniques.values())

    def technique(self, technique_id: str) -> Technique:
        try:
            return self.techniques[technique_id]
        except KeyError:
            raise AttackCatalogError(
                f"{technique_id} is not a technique in ATT&CK v{self.attack_version}"
            ) from None

    def tactic(self, reference: str) -> Tactic:
        """Finds a tactic by id (TA0007), short name (discovery) or display name (Discovery)."""
        found = self._tactic_index.get(_fold_tactic(reference))
        if found is not None:
            return found
        raise AttackCatalogError(f"{reference!r} is not a tactic in ATT&CK v{self.attack_version}")

    def has_tactic(self, reference: str) -> bool:
        try:
            self.tactic(reference)
        except AttackCatalogError:
            return False
        return True

    def belongs_to(self, technique_id: str, tactic_reference: str) -> bool:
        """Whether ATT&CK lists the technique under the tactic."""
        return self.tactic(tactic_reference).short_name in self.technique(technique_id).tactics

    def current_techniques(self) -> tuple[Technique, ...]:
        return tuple(t for t in self.techniques.values() if t.is_current)


def _fold_tactic(spelling: str) -> str:
    return spelling.strip().lower().replace(" ", "-").replace("_", "-")


def catalog_from_document(document: Mapping[str, object]) -> AttackCatalog:
    """Builds a catalog from the packaged JSON layout; raises AttackCatalogError on a bad layout."""
    try:
        tactic_rows = document["tactics"]
        technique_rows = document["techniques"]
        assert isinstance(tactic_rows, list) and isinstance(technique_rows, list)
        tactics = tuple(
            Tactic(str(t_id), str(short), str(name)) for t_id, short, name in tactic_rows
        )
        techniques = {
            str(t_id): Technique(str(t_id), str(name), tuple(tactic_names), bool(dep), bool(rev))
            for t_id, name, tactic_names, dep, rev in technique_rows
        }
        return AttackCatalog(
            attack_version=str(document["attack_version"]),
            domain=str(document["domain"]),
            tactics=tactics,
            techniques=techniques,
        )
    except (KeyError, TypeError, ValueError, AssertionError) as error:
        raise AttackCatalogError(f"malformed ATT&CK catalog document: {error!r}") from error


@cache
def load_catalog() -> AttackCatalog:
    """The catalog shipped with Shrike (ATT&CK Enterprise v18.1), read once per process."""
    text = resources.files(__package__).joinpath("enterprise-attack.json").read_text("utf-8")
    return catalog_from_document(json.loads(text))

"""The CTCAE v5.0 term list: every adverse-event term with its MedDRA code, System Organ Class
(SOC), grade 1-5 descriptions and definition, and the rules of coding an adverse event with it.

Source: National Cancer Institute, Common Terminology Criteria for Adverse Events (CTCAE)
version 5.0, 27 November 2017 (the complete Excel edition, 837 terms in 26 SOCs), shipped as
`data/ctcae_v5_terms.csv`; its provenance, conversion and checksum are in `data/README.md`.

Rules (CTCAE v5.0, "CTCAE v5.0 Instructions"): a grade the table marks "-" does not exist for the
term and is refused (no grade 5 for "Alopecia"); only the "<SOC> - Other, specify" term of each
SOC takes a free-text name of the event, and every other term refuses one. Terms are matched
exactly as CTCAE spells them (American spelling, "Anemia"); a near miss (case, spaces) is
refused with the term it probably meant.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from startrt.validation import InvalidInputError

CTCAE_VERSION = "CTCAE v5.0 (NCI, 27 November 2017)"
GRADES = (1, 2, 3, 4, 5)
NOT_DEFINED = "-"
"""How the table marks a grade that does not exist for a term."""
OTHER_SPECIFY_SUFFIX = " - Other, specify"
OTHER_SPECIFY_MAX_CHARS = 200


@dataclass(frozen=True)
class CtcaeTerm:
    """One CTCAE v5.0 term: `grades[g - 1]` describes grade g ("-" where it does not exist);
    `definition` is empty for the "Other, specify" terms, which have none."""

    meddra_code: str
    term: str
    soc: str
    grades: tuple[str, str, str, str, str]
    definition: str
    navigational_note: str

    @property
    def other_specify(self) -> bool:
        """True for the SOC's "<SOC> - Other, specify" term, which needs the event named."""
        return self.term.endswith(OTHER_SPECIFY_SUFFIX)

    @property
    def allowed_grades(self) -> tuple[int, ...]:
        """The grades the table defines for this term, e.g. (1, 2, 3) for "Nausea"."""
        return tuple(g for g in GRADES if self.grades[g - 1] != NOT_DEFINED)

    def grade_definition(self, grade: int) -> str | None:
        """The table's description of `grade`, None where the term has no such grade."""
        return self.grades[grade - 1] if grade in self.allowed_grades else None


@dataclass(frozen=True)
class CodedAdverseEvent:
    """An adverse event's term and grade as checked against the table, with the event's own
    name for an "Other, specify" term (else "")."""

    term: CtcaeTerm
    grade: int
    other_specify: str


@cache
def terms() -> tuple[CtcaeTerm, ...]:
    """All 837 terms, in the table's order (by SOC, then as NCI lists them)."""
    table = resources.files("startrt.clinical.data").joinpath("ctcae_v5_terms.csv")
    with io.StringIO(table.read_text(encoding="utf-8"), newline="") as handle:
        return tuple(
            CtcaeTerm(
                meddra_code=row["meddra_code"],
                term=row["term"],
                soc=row["soc"],
                grades=(
                    row["grade_1"],
                    row["grade_2"],
                    row["grade_3"],
                    row["grade_4"],
                    row["grade_5"],
                ),
                definition="" if row["definition"] == NOT_DEFINED else row["definition"],
                navigational_note=row["navigational_note"],
            )
            for row in csv.DictReader(handle)
        )


@cache
def _by_term() -> Mapping[str, CtcaeTerm]:
    return MappingProxyType({entry.term: entry for entry in terms()})


@cache
def _by_folded_term() -> Mapping[str, CtcaeTerm]:
    return MappingProxyType({_fold(entry.term): entry for entry in terms()})


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


@cache
def system_organ_classes() -> tuple[str, ...]:
    """The 26 SOCs in the table's order."""
    return tuple(dict.fromkeys(entry.soc for entry in terms()))


def terms_of(soc: str) -> tuple[CtcaeTerm, ...]:
    """The terms of one SOC (InvalidInputError for a name that is not a CTCAE v5.0 SOC)."""
    if soc not in system_organ_classes():
        raise InvalidInputError("soc", soc, f"is not a System Organ Class of {CTCAE_VERSION}")
    return tuple(entry for entry in terms() if entry.soc == soc)


def closest_term(text: str) -> CtcaeTerm | None:
    """The term `text` names when case and spacing are ignored ("platelet count  DECREASED"),
    else None."""
    return _by_folded_term().get(_fold(text))


def lookup(term: str) -> CtcaeTerm:
    """The term spelled exactly as CTCAE v5.0 does; InvalidInputError otherwise, naming the term
    meant when only case or spacing differ."""
    entry = _by_term().get(term)
    if entry is not None:
        return entry
    near = closest_term(term)
    hint = f" (did you mean “{near.term}”?)" if near is not None else ""
    raise InvalidInputError("term", term, f"is not a {CTCAE_VERSION} term{hint}")


def check_grade(entry: CtcaeTerm, grade: int) -> int:
    """`grade` if the table defines it for the term, else InvalidInputError naming the grades
    it has."""
    if grade not in entry.allowed_grades:
        allowed = ", ".join(str(g) for g in entry.allowed_grades)
        raise InvalidInputError(
            "ctcae_grade",
            grade,
            f"{CTCAE_VERSION} defines no grade {grade} for “{entry.term}” (grades {allowed})",
        )
    return grade


def code_adverse_event(term: str, grade: int, other_specify: str = "") -> CodedAdverseEvent:
    """Check an adverse event's term, grade and "Other, specify" name against the table: the
    term exists, the grade is defined for it, and a name of the event is given exactly for an
    "Other, specify" term (at most OTHER_SPECIFY_MAX_CHARS characters, surrounding spaces
    dropped)."""
    entry = lookup(term)
    check_grade(entry, grade)
    name = other_specify.strip()
    if entry.other_specify and not name:
        raise InvalidInputError(
            "other_specify", other_specify, f"name the event: required for “{entry.term}”"
        )
    if not entry.other_specify and name:
        raise InvalidInputError(
            "other_specify",
            other_specify,
            f"only an “… - Other, specify” term takes a name, not “{entry.term}”",
        )
    if len(name) > OTHER_SPECIFY_MAX_CHARS:
        raise InvalidInputError(
            "other_specify", name, f"must be at most {OTHER_SPECIFY_MAX_CHARS} characters"
        )
    return CodedAdverseEvent(entry, grade, name)

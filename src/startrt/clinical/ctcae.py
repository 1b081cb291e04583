"""CTCAE v5.0 grades (0-4) of laboratory adverse events, in SI units.

Source: National Cancer Institute, Common Terminology Criteria for Adverse Events (CTCAE)
version 5.0, 27 November 2017 (not v6, whose cut-offs differ for several terms).

Bands are half-open as the table reads them: "<LLN - 100" means 100 <= value < LLN, ">ULN -
3.0 x ULN" means ULN < value <= 3.0 x ULN. Comparisons are made in decimal arithmetic on the
numbers as written, so a value exactly on a cut-off (3.0 x 21.3 = 63.9) falls in the band the
table gives it. Grade 4 anemia and hypoalbuminemia (life-threatening) and grade 5 are clinical,
never derived from a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from startrt.validation import (
    CREATININE_UMOL_L,
    GFR_ML_MIN_173,
    InvalidInputError,
    PlausibleRange,
    require_non_negative,
    require_positive,
)


class LabTerm(StrEnum):
    """Laboratory terms graded here; each knows its CTCAE v5.0 term name and SI unit."""

    ANEMIA = "anemia"
    PLATELETS = "platelets"
    NEUTROPHILS = "neutrophils"
    WBC = "wbc"
    LYMPHOCYTES = "lymphocytes"
    AST = "ast"
    ALT = "alt"
    BILIRUBIN = "bilirubin"
    CREATININE = "creatinine"
    EGFR = "egfr"
    ALBUMIN = "albumin"

    @property
    def ctcae_term(self) -> str:
        """The CTCAE v5.0 term name, e.g. "Platelet count decreased"."""
        return _SPECS[self].ctcae_term

    @property
    def unit(self) -> str:
        """SI unit of the value, LLN, ULN and baseline, e.g. "10^9/L"."""
        return _SPECS[self].value_range.unit


@dataclass(frozen=True)
class CtcaeGrade:
    """A graded result with the reference limits it was graded against (value in term.unit)."""

    term: LabTerm
    grade: int
    value: float
    lln: float | None
    uln: float | None
    baseline: float | None
    rule: str


@dataclass(frozen=True)
class _Cut:
    """Lower edge of one grade's band: the value must pass `limit` (reach it if inclusive)."""

    grade: int
    limit: Decimal
    label: str
    inclusive: bool = False


@dataclass(frozen=True)
class _Multiple:
    """Grade cut-off written as a multiple of ULN or of the baseline value."""

    grade: int
    times: Decimal
    inclusive: bool = False


@dataclass(frozen=True)
class _DecreaseSpec:
    """Term graded down from LLN (grade 1) and by absolute cut-offs (grade 2 and up)."""

    ctcae_term: str
    value_range: PlausibleRange
    lln_range: PlausibleRange
    cutoffs: tuple[Decimal, ...]  # upper edges (exclusive) of grades 2, 3, (4)
    lln_always_required: bool = True


@dataclass(frozen=True)
class _IncreaseSpec:
    """Term graded up by multiples of ULN and, where the table says so, of the baseline."""

    ctcae_term: str
    value_range: PlausibleRange
    uln_range: PlausibleRange
    uln_multiples: tuple[_Multiple, ...]
    baseline_multiples: tuple[_Multiple, ...]
    # True: baseline bands replace ULN bands when baseline > ULN (AST, ALT, bilirubin).
    # False: both sets of bands apply and the higher grade wins (creatinine).
    baseline_replaces_uln: bool = True


def _d(text: str) -> Decimal:
    return Decimal(text)


def _multiples(*cuts: tuple[int, str, bool]) -> tuple[_Multiple, ...]:
    return tuple(_Multiple(grade, _d(times), inclusive) for grade, times, inclusive in cuts)


_COUNT = "10^9/L"
_TRANSAMINASE_ULN = _multiples((1, "1", False), (2, "3", False), (3, "5", False), (4, "20", False))
_TRANSAMINASE_BASELINE = _multiples(
    (1, "1.5", True), (2, "3", False), (3, "5", False), (4, "20", False)
)
_TRANSAMINASE_VALUE = PlausibleRange(0.0, 30000.0, "U/L")
_TRANSAMINASE_ULN_RANGE = PlausibleRange(5.0, 200.0, "U/L")


def _blood_count(term: str, high: float, lln: tuple[float, float], *cuts: str) -> _DecreaseSpec:
    return _DecreaseSpec(
        term,
        PlausibleRange(0.0, high, _COUNT),
        PlausibleRange(lln[0], lln[1], _COUNT),
        tuple(_d(cut) for cut in cuts),
    )


_SPECS: Mapping[LabTerm, _DecreaseSpec | _IncreaseSpec] = MappingProxyType(
    {
        # Hb below 20 g/L is refused: it catches g/dL and mmol/L entered as g/L.
        LabTerm.ANEMIA: _DecreaseSpec(
            "Anemia",
            PlausibleRange(20.0, 250.0, "g/L"),
            PlausibleRange(80.0, 200.0, "g/L"),
            (_d("100"), _d("80")),
        ),
        LabTerm.PLATELETS: _blood_count(
            "Platelet count decreased", 2000.0, (50.0, 600.0), "75", "50", "25"
        ),
        LabTerm.NEUTROPHILS: _blood_count(
            "Neutrophil count decreased", 100.0, (0.5, 15.0), "1.5", "1.0", "0.5"
        ),
        LabTerm.WBC: _blood_count(
            "White blood cell decreased", 500.0, (1.0, 25.0), "3.0", "2.0", "1.0"
        ),
        LabTerm.LYMPHOCYTES: _blood_count(
            "Lymphocyte count decreased", 100.0, (0.2, 10.0), "0.8", "0.5", "0.2"
        ),
        LabTerm.AST: _IncreaseSpec(
            "Aspartate aminotransferase increased",
            _TRANSAMINASE_VALUE,
            _TRANSAMINASE_ULN_RANGE,
            _TRANSAMINASE_ULN,
            _TRANSAMINASE_BASELINE,
        ),
        LabTerm.ALT: _IncreaseSpec(
            "Alanine aminotransferase increased",
            _TRANSAMINASE_VALUE,
            _TRANSAMINASE_ULN_RANGE,
            _TRANSAMINASE_ULN,
            _TRANSAMINASE_BASELINE,
        ),
        LabTerm.BILIRUBIN: _IncreaseSpec(
            "Blood bilirubin increased",
            PlausibleRange(0.0, 1500.0, "umol/L"),
            PlausibleRange(5.0, 60.0, "umol/L"),
            _multiples((1, "1", False), (2, "1.5", False), (3, "3", False), (4, "10", False)),
            _multiples((1, "1", False), (2, "1.5", False), (3, "3", False), (4, "10", False)),
        ),
        LabTerm.CREATININE: _IncreaseSpec(
            "Creatinine increased",
            CREATININE_UMOL_L,
            PlausibleRange(30.0, 250.0, CREATININE_UMOL_L.unit),
            _multiples((1, "1", False), (2, "1.5", False), (3, "3", False), (4, "6", False)),
            _multiples((2, "1.5", False), (3, "3", False)),
            baseline_replaces_uln=False,
        ),
        LabTerm.EGFR: _DecreaseSpec(
            "Chronic kidney disease",
            GFR_ML_MIN_173,
            PlausibleRange(30.0, 150.0, GFR_ML_MIN_173.unit),
            (_d("60"), _d("30"), _d("15")),
            lln_always_required=False,
        ),
        # Albumin below 5 g/L is refused: it catches g/dL entered as g/L.
        LabTerm.ALBUMIN: _DecreaseSpec(
            "Hypoalbuminemia",
            PlausibleRange(5.0, 80.0, "g/L"),
            PlausibleRange(20.0, 60.0, "g/L"),
            (_d("30"), _d("20")),
        ),
    }
)


def grade_lab(
    term: LabTerm,
    value: float,
    *,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
) -> CtcaeGrade:
    """CTCAE v5.0 grade (0-4) of one laboratory value in the term's SI unit (`term.unit`).

    Decreases (anemia, counts, eGFR, albumin) need `lln` (eGFR only to tell grade 0 from 1);
    increases (AST, ALT, bilirubin, creatinine) need `uln` and accept any `lln` >= 0 (a
    reference range "0-35 U/L" has LLN 0). `baseline` (the patient's
    pre-treatment value) selects the abnormal-baseline bands of AST/ALT/bilirubin when it
    exceeds ULN and adds the baseline bands of creatinine; other terms only record it.
    Source: NCI CTCAE v5.0, 2017.
    """
    lab_term = _lab_term(term)
    spec = _SPECS[lab_term]
    value_number = spec.value_range.check("value", value)
    limits = _Limits.checked(spec, lln, uln)
    baseline_number = None if baseline is None else spec.value_range.check("baseline", baseline)
    if isinstance(spec, _DecreaseSpec):
        grade, rule = _grade_decrease(lab_term, spec, value_number, limits.lln)
    else:
        grade, rule = _grade_increase(lab_term, spec, value_number, limits.uln, baseline_number)
    return CtcaeGrade(lab_term, grade, value_number, limits.lln, limits.uln, baseline_number, rule)


def check_reference_limits(
    term: LabTerm, *, lln: float | None, uln: float | None
) -> tuple[float | None, float | None]:
    """A laboratory's reference limits (LLN, ULN) for `term` as `grade_lab` accepts them: the
    limit graded against within its plausible range, the other not negative, LLN below ULN;
    an error names "lln" or "uln"."""
    limits = _Limits.checked(_SPECS[_lab_term(term)], lln, uln)
    return limits.lln, limits.uln


def _lab_term(term: object) -> LabTerm:
    if isinstance(term, str) and term in set(LabTerm):
        return LabTerm(term)
    allowed = ", ".join(member.value for member in LabTerm)
    raise InvalidInputError("term", term, f"must be one of {allowed}")


@dataclass(frozen=True)
class _Limits:
    lln: float | None
    uln: float | None

    @classmethod
    def checked(
        cls, spec: _DecreaseSpec | _IncreaseSpec, lln: float | None, uln: float | None
    ) -> _Limits:
        """Check the limit the term grades against for plausibility, the other for sign.

        An increase term's LLN is recorded, not graded against, and may be 0: laboratories
        print reference ranges such as "0-35 U/L" (ALT) or "0-21 umol/L" (bilirubin). A
        decrease term's LLN is a grade-1 cut-off and must lie in its plausible range (> 0)."""
        unit = spec.value_range.unit
        if isinstance(spec, _DecreaseSpec):
            lln_number = None if lln is None else spec.lln_range.check("lln", lln)
            uln_number = None if uln is None else require_positive("uln", uln, unit)
        else:
            lln_number = None if lln is None else require_non_negative("lln", lln, unit)
            uln_number = None if uln is None else spec.uln_range.check("uln", uln)
        if lln_number is not None and uln_number is not None and lln_number >= uln_number:
            raise InvalidInputError("lln", lln, f"must be below uln ({uln_number:g} {unit})")
        return cls(lln_number, uln_number)


def _missing_limit(name: str, term: LabTerm) -> InvalidInputError:
    return InvalidInputError(name, None, f"required to grade {term.ctcae_term}")


def _grade_decrease(
    term: LabTerm, spec: _DecreaseSpec, value: float, lln: float | None
) -> tuple[int, str]:
    unit = spec.value_range.unit
    cuts = [
        _Cut(grade, cutoff, f"{cutoff} {unit}")
        for grade, cutoff in enumerate(spec.cutoffs, start=2)
    ]
    if lln is not None:
        cuts.insert(0, _Cut(1, _exact(lln), "LLN"))
    elif spec.lln_always_required or _exact(value) >= spec.cutoffs[0]:
        raise _missing_limit("lln", term)
    return _grade_on_cuts(_exact(value), cuts, rising=False)


def _grade_increase(
    term: LabTerm,
    spec: _IncreaseSpec,
    value: float,
    uln: float | None,
    baseline: float | None,
) -> tuple[int, str]:
    if uln is None:
        raise _missing_limit("uln", term)
    exact_value, exact_uln = _exact(value), _exact(uln)
    uln_cuts = _scaled(spec.uln_multiples, exact_uln, "ULN")
    if baseline is None:
        return _grade_on_cuts(exact_value, uln_cuts, rising=True)
    exact_baseline = _exact(baseline)
    baseline_cuts = _scaled(spec.baseline_multiples, exact_baseline, "baseline")
    if spec.baseline_replaces_uln:
        if exact_baseline <= exact_uln:
            return _grade_on_cuts(exact_value, uln_cuts, rising=True)
        grade, rule = _grade_on_cuts(exact_value, baseline_cuts, rising=True)
        return grade, f"{rule} (baseline > ULN)"
    by_uln = _grade_on_cuts(exact_value, uln_cuts, rising=True)
    by_baseline = _grade_on_cuts(exact_value, baseline_cuts, rising=True)
    return by_baseline if by_baseline[0] > by_uln[0] else by_uln


def _scaled(multiples: tuple[_Multiple, ...], reference: Decimal, name: str) -> list[_Cut]:
    return [
        _Cut(
            cut.grade,
            cut.times * reference,
            name if cut.times == 1 and name == "ULN" else f"{cut.times:.1f} x {name}",
            cut.inclusive,
        )
        for cut in multiples
    ]


def _grade_on_cuts(value: Decimal, cuts: list[_Cut], *, rising: bool) -> tuple[int, str]:
    """Highest grade whose cut the value passes, with the band written out as a rule."""
    passed = [cut for cut in cuts if _passes(value, cut, rising=rising)]
    if not passed:
        first = cuts[0]
        if rising:
            return 0, f"value {'<' if first.inclusive else '<='} {first.label}"
        return 0, f"value {'>' if first.inclusive else '>='} {first.label}"
    cut = max(passed, key=lambda candidate: candidate.grade)
    above = [candidate for candidate in cuts if candidate.grade > cut.grade]
    if rising:
        lower = f"{cut.label} {'<=' if cut.inclusive else '<'} value"
        if not above:
            return cut.grade, f"value {'>=' if cut.inclusive else '>'} {cut.label}"
        return cut.grade, f"{lower} {'<' if above[0].inclusive else '<='} {above[0].label}"
    upper = f"value {'<=' if cut.inclusive else '<'} {cut.label}"
    if not above:
        return cut.grade, upper
    return cut.grade, f"{above[0].label} {'<' if above[0].inclusive else '<='} {upper}"


def _passes(value: Decimal, cut: _Cut, *, rising: bool) -> bool:
    if rising:
        return value >= cut.limit if cut.inclusive else value > cut.limit
    return value <= cut.limit if cut.inclusive else value < cut.limit


def _exact(number: float) -> Decimal:
    """The number as written (shortest repr), so 3 x 21.3 is exactly 63.9."""
    return Decimal(repr(float(number)))

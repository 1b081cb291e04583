"""Capecitabine: BSA dose in whole 150/500 mg tablets, renal adjustment, contraindications and
toxicity dose modification.

Source throughout: Xeloda (capecitabine) EU Summary of Product Characteristics (SmPC, sections
4.2-4.4) and US prescribing information. Doses in mg, BSA in m2, CrCl (Cockcroft-Gault) in ml/min.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from startrt.validation import BSA_M2, CRCL_ML_MIN, InvalidInputError, PlausibleRange

TABLET_STRENGTHS_MG = (500, 150)
SMALL_TABLET_MG = 150  # the only difference allowed between morning and evening
# The label's BSA dose tables never use more than three 150 mg tablets per administration
# (e.g. 1450 mg = 2 x 500 + 3 x 150 at 1000 mg/m2); four would be better given as a 500.
MAX_150_MG_TABLETS = 3
DOSE_LEVELS_PERCENT = (100, 75, 50)
SEVERE_RENAL_IMPAIRMENT_BELOW_CRCL_ML_MIN = 30.0
MODERATE_RENAL_IMPAIRMENT_UP_TO_CRCL_ML_MIN = 50.0
MODERATE_RENAL_IMPAIRMENT_FACTOR = 0.75
MIN_NEUTROPHILS_10E9_L = 1.5
MIN_PLATELETS_10E9_L = 100.0

DOSE_MG_PER_M2 = PlausibleRange(100.0, 1250.0, "mg/m2")  # 1250 mg/m2: the label's highest dose
NEUTROPHILS_10E9_L = PlausibleRange(0.0, 100.0, "x10^9/L")
PLATELETS_10E9_L = PlausibleRange(0.0, 3000.0, "x10^9/L")

Tablets = dict[int, int]
Action = Literal["continue", "interrupt", "discontinue"]

ROUNDING_RULE = (
    "startrt rounding rule (the software's own, not the label's BSA tables): each "
    "administration is a combination of 500 mg tablets and at most three 150 mg tablets (as in "
    "the label's BSA tables); the evening "
    "dose equals the morning dose or has one more 150 mg tablet (never a 500 mg difference "
    "between the two administrations); the pair with the "
    "daily total closest to 2 x target is chosen; ties prefer equal doses, then the lower total"
)


class CapecitabineContraindicatedError(ValueError):
    """Capecitabine must not be given; `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _require_whole(field: str, value: object, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, value, rule)
    return value


def _require_flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(field, value, "must be True or False")
    return value


def _known_true(field: str, value: object) -> bool:
    """True only for True; None (unknown) and False are not a finding."""
    return value is not None and _require_flag(field, value)


def _require_dose_level(field: str, value: object) -> int:
    rule = f"must be one of {DOSE_LEVELS_PERCENT} %"
    level = _require_whole(field, value, rule)
    if level not in DOSE_LEVELS_PERCENT:
        raise InvalidInputError(field, value, rule)
    return level


def _fewest_tablets(dose_mg: int) -> Tablets | None:
    # 150 * m for m = 0..3 leaves distinct remainders modulo 500, so at most one combination
    # with m <= MAX_150_MG_TABLETS exists, and it is also the one with the fewest tablets.
    for count_150 in range(MAX_150_MG_TABLETS + 1):
        rest_mg = dose_mg - 150 * count_150
        if rest_mg >= 0 and rest_mg % 500 == 0:
            return {500: rest_mg // 500, 150: count_150}
    return None


def tablet_combination(dose_mg: int) -> dict[int, int] | None:
    """500 mg tablets and at most three 150 mg tablets making exactly `dose_mg` (mg), as
    {500: n, 150: m}; None if there is none (e.g. 350, 400, 550, 700, 850, 1700 mg)."""
    dose = _require_whole("dose_mg", dose_mg, "must be a whole number of mg")
    if dose < 0:
        raise InvalidInputError("dose_mg", dose_mg, "must be >= 0 mg")
    return _fewest_tablets(dose)


@dataclass(frozen=True)
class CapecitabineDose:
    """One day's capecitabine: morning and evening doses (mg) in tablets {500: n, 150: m}.

    target_mg is per administration, after the renal factor and dose level; notes say why a
    reduction was applied and state the rounding rule.
    """

    bsa_m2: float
    dose_mg_per_m2: float
    dose_level_percent: int
    renal_factor: float
    target_mg: float
    morning_mg: int
    evening_mg: int
    tablets_morning: dict[int, int]
    tablets_evening: dict[int, int]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Split:
    morning_mg: int
    evening_mg: int
    tablets_morning: Tablets
    tablets_evening: Tablets

    @property
    def daily_mg(self) -> int:
        return self.morning_mg + self.evening_mg


def _splits_from(morning_mg: int) -> list[_Split]:
    morning = _fewest_tablets(morning_mg)
    if morning is None:
        return []
    splits = [_Split(morning_mg, morning_mg, morning, morning)]
    evening = _fewest_tablets(morning_mg + SMALL_TABLET_MG)
    if evening == {**morning, SMALL_TABLET_MG: morning[SMALL_TABLET_MG] + 1}:
        splits.append(_Split(morning_mg, morning_mg + SMALL_TABLET_MG, morning, evening))
    return splits


def _split_daily_dose(target_mg: float) -> _Split:
    """Apply ROUNDING_RULE to a target per administration (mg)."""
    # (150, 150) is always a candidate, so the best daily total is within 300 + 2 x target of
    # 2 x target; no morning above target + 1000 mg can beat it.
    highest_morning_mg = 50 * math.ceil(target_mg / 50) + 1000
    candidates = [
        split
        for morning_mg in range(50, highest_morning_mg + 1, 50)
        for split in _splits_from(morning_mg)
    ]

    def rank(split: _Split) -> tuple[float, bool, int]:
        # Rounded to 1e-6 mg so that float noise in the target cannot break a true tie.
        distance_mg = round(abs(split.daily_mg - 2.0 * target_mg), 6)
        return distance_mg, split.morning_mg != split.evening_mg, split.daily_mg

    return min(candidates, key=rank)


def _severe_renal_impairment_reason(crcl_ml_min: float) -> str | None:
    if crcl_ml_min < SEVERE_RENAL_IMPAIRMENT_BELOW_CRCL_ML_MIN:
        return (
            f"severe renal impairment: CrCl {crcl_ml_min:g} ml/min < "
            f"{SEVERE_RENAL_IMPAIRMENT_BELOW_CRCL_ML_MIN:g} ml/min (contraindicated, SmPC 4.3)"
        )
    return None


def _renal_factor(crcl_ml_min: float | None, reduce_for_moderate: bool) -> tuple[float, str]:
    if crcl_ml_min is None:
        return 1.0, "CrCl not given: renal function not assessed, no renal reduction"
    crcl = CRCL_ML_MIN.check("crcl_ml_min", crcl_ml_min)
    severe_reason = _severe_renal_impairment_reason(crcl)
    if severe_reason is not None:
        raise CapecitabineContraindicatedError(severe_reason)
    if crcl > MODERATE_RENAL_IMPAIRMENT_UP_TO_CRCL_ML_MIN:
        return 1.0, f"CrCl {crcl:g} ml/min > 50 ml/min: no renal reduction"
    if not reduce_for_moderate:
        return 1.0, (
            f"CrCl {crcl:g} ml/min (moderate renal impairment, 30-50 ml/min): not reduced, "
            "the protocol does not apply the label's 75 % starting dose at this dose"
        )
    return MODERATE_RENAL_IMPAIRMENT_FACTOR, (
        f"CrCl {crcl:g} ml/min (moderate renal impairment, 30-50 ml/min): dose reduced to 75 % "
        "of the starting dose (SmPC 4.2)"
    )


def capecitabine_dose(
    bsa_m2: float,
    dose_mg_per_m2: float,
    *,
    crcl_ml_min: float | None = None,
    reduce_for_moderate_renal_impairment: bool = True,
    dose_level_percent: int = 100,
) -> CapecitabineDose:
    """Capecitabine dose per administration (b.i.d.), mg, in whole 150/500 mg tablets.

    target = BSA (m2) * dose (mg/m2) * renal factor * dose level / 100. Renal (Cockcroft-Gault
    CrCl, ml/min): < 30 raises CapecitabineContraindicatedError; 30-50 inclusive gives 75 % when
    reduce_for_moderate_renal_impairment. Rounding: ROUNDING_RULE (the software's own rule).
    Source: Xeloda SmPC 4.2-4.3.
    """
    bsa = BSA_M2.check("bsa_m2", bsa_m2)
    dose_per_m2 = DOSE_MG_PER_M2.check("dose_mg_per_m2", dose_mg_per_m2)
    level = _require_dose_level("dose_level_percent", dose_level_percent)
    reduce = _require_flag(
        "reduce_for_moderate_renal_impairment", reduce_for_moderate_renal_impairment
    )
    renal_factor, renal_note = _renal_factor(crcl_ml_min, reduce)
    target_mg = bsa * dose_per_m2 * renal_factor * level / 100.0
    split = _split_daily_dose(target_mg)
    notes = [renal_note]
    if level < 100:
        notes.append(f"dose level {level} % after toxicity dose modification (SmPC 4.2 table)")
    notes.append(
        f"{ROUNDING_RULE}. Target {target_mg:.1f} mg per administration ({2 * target_mg:.1f} mg "
        f"daily); given {split.morning_mg} + {split.evening_mg} = {split.daily_mg} mg daily."
    )
    return CapecitabineDose(
        bsa_m2=bsa,
        dose_mg_per_m2=dose_per_m2,
        dose_level_percent=level,
        renal_factor=renal_factor,
        target_mg=target_mg,
        morning_mg=split.morning_mg,
        evening_mg=split.evening_mg,
        tablets_morning=split.tablets_morning,
        tablets_evening=split.tablets_evening,
        notes=tuple(notes),
    )


def contraindications(
    *,
    crcl_ml_min: float | None = None,
    dpd_deficiency: bool | None = None,
    neutrophils_10e9_l: float | None = None,
    platelets_10e9_l: float | None = None,
    severe_hepatic_impairment: bool | None = None,
    pregnant_or_lactating: bool | None = None,
    brivudine_within_4_weeks: bool | None = None,
) -> tuple[str, ...]:
    """One reason per contraindication or do-not-start condition present; empty if none.

    None means not known and is not reported. Source: Xeloda SmPC 4.3 (contraindications),
    4.2 (baseline neutrophils < 1.5 or platelets < 100 x10^9/L: do not treat), 4.4/4.5
    (brivudine: at least 4 weeks between the end of brivudine and capecitabine).
    """
    reasons: list[str] = []
    if crcl_ml_min is not None:
        renal_reason = _severe_renal_impairment_reason(
            CRCL_ML_MIN.check("crcl_ml_min", crcl_ml_min)
        )
        if renal_reason is not None:
            reasons.append(renal_reason)
    if _known_true("dpd_deficiency", dpd_deficiency):
        reasons.append(
            "DPD deficiency: complete DPD deficiency is contraindicated (SmPC 4.3); partial "
            "deficiency needs a specialist-reduced starting dose (SmPC 4.4)"
        )
    blood_counts = (
        ("neutrophils", neutrophils_10e9_l, NEUTROPHILS_10E9_L, MIN_NEUTROPHILS_10E9_L),
        ("platelets", platelets_10e9_l, PLATELETS_10E9_L, MIN_PLATELETS_10E9_L),
    )
    for name, value, plausible, minimum in blood_counts:
        if value is not None and plausible.check(f"{name}_10e9_l", value) < minimum:
            condition = "neutropenia" if name == "neutrophils" else "thrombocytopenia"
            reasons.append(
                f"{name} {value:g} x10^9/L < {minimum:g}: do not start "
                f"(SmPC 4.2; severe {condition} SmPC 4.3)"
            )
    if _known_true("severe_hepatic_impairment", severe_hepatic_impairment):
        reasons.append("severe hepatic impairment (contraindicated, SmPC 4.3)")
    if _known_true("pregnant_or_lactating", pregnant_or_lactating):
        reasons.append("pregnancy or lactation (contraindicated, SmPC 4.3)")
    if _known_true("brivudine_within_4_weeks", brivudine_within_4_weeks):
        reasons.append(
            "brivudine (or analogue) within the last 4 weeks (contraindicated, SmPC 4.3; "
            "4-week wait, SmPC 4.4/4.5)"
        )
    return tuple(reasons)


@dataclass(frozen=True)
class DoseModification:
    """What to do after a toxicity: continue, interrupt (then resume at a level) or stop."""

    action: Action
    resume_level_percent: int | None
    reason: str


# SmPC 4.2 toxicity table: resume level (% of the starting dose) by occurrence of the same
# toxicity; None = discontinue permanently (also for every later occurrence).
_RESUME_LEVEL_BY_OCCURRENCE: dict[int, tuple[int | None, ...]] = {
    2: (100, 75, 50, None),
    3: (75, 50, None),
    4: (None,),
}
_GRADE_4_IN_PATIENT_INTEREST_LEVEL_PERCENT = 50


def dose_modification(
    grade: int,
    occurrence: int,
    current_level_percent: int,
    *,
    continue_in_patient_interest: bool = False,
) -> DoseModification:
    """Capecitabine dose modification for a toxicity of NCIC/CTCAE grade 0-4.

    occurrence counts appearances of the same toxicity (1 = first). A reduced dose is never
    raised: resume level = min(current, table level). Grade 4, 1st occurrence: discontinue, or
    interrupt and resume at 50 % if the physician judges continuing in the patient's interest.
    Source: Xeloda SmPC 4.2, table of dose reductions (US label table 2).
    """
    grade = _require_whole("grade", grade, "must be a whole CTCAE grade 0-4")
    if not 0 <= grade <= 4:
        raise InvalidInputError("grade", grade, "must be a whole CTCAE grade 0-4")
    count = _require_whole("occurrence", occurrence, "must be a whole number >= 1")
    if count < 1:
        raise InvalidInputError("occurrence", occurrence, "must be a whole number >= 1")
    current = _require_dose_level("current_level_percent", current_level_percent)
    in_patient_interest = _require_flag(
        "continue_in_patient_interest", continue_in_patient_interest
    )
    if grade <= 1:
        return DoseModification(
            "continue", current, f"grade {grade}: continue at the current level ({current} %)"
        )
    levels = _RESUME_LEVEL_BY_OCCURRENCE[grade]
    table_level = levels[min(count, len(levels)) - 1]
    event = f"grade {grade}, occurrence {count}"
    if table_level is None and grade == 4 and count == 1 and in_patient_interest:
        table_level = _GRADE_4_IN_PATIENT_INTEREST_LEVEL_PERCENT
        event += " (continuing judged in the patient's interest)"
    if table_level is None:
        return DoseModification("discontinue", None, f"{event}: discontinue permanently")
    resume = min(current, table_level)
    return DoseModification(
        "interrupt",
        resume,
        f"{event}: interrupt until grade 0-1, then resume at {resume} % "
        f"(table {table_level} %, current {current} %; a reduced dose is never raised)",
    )

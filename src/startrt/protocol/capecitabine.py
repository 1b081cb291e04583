"""Capecitabine of one PRRT cycle as a protocol decision: who gets it, the dose, and whether it
may be given.

The protocol's capecitabine settings say the dose (mg/m2 b.i.d.), the BSA formula and whether
moderate renal impairment reduces it; its schedule says which arms give capecitabine, with which
PRRT cycles and for how many days. The clinical calculator (`clinical.capecitabine`, Xeloda
SmPC 4.2-4.4) does the rest: the renal factor, whole 500 / 150 mg tablets and the
contraindications. CLI, web and simulation all call `capecitabine_decision`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from startrt.clinical.bsa import dubois_bsa_m2, mosteller_bsa_m2
from startrt.clinical.capecitabine import (
    ROUNDING_RULE,
    CapecitabineContraindicatedError,
    CapecitabineDose,
    capecitabine_dose,
    contraindications,
)
from startrt.clinical.egfr import cockcroft_gault_crcl_ml_min
from startrt.clinical.sex import Sex
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError

BSA_FORMULAS: dict[str, Callable[[float, float], float]] = {
    "dubois": dubois_bsa_m2,
    "mosteller": mosteller_bsa_m2,
}
OTHER_CONTRAINDICATION = "other label contraindication recorded by the investigator"
CrclSource = Literal["given", "Cockcroft-Gault"]


@dataclass(frozen=True)
class CapecitabineFindings:
    """What the label's contraindications read besides the renal function; None = not known.

    Blood counts in x10^9/L (the cycle's pre-cycle labs); `other_contraindication` is another
    label contraindication recorded by the investigator.
    """

    dpd_deficiency: bool | None = None
    pregnant_or_lactating: bool | None = None
    severe_hepatic_impairment: bool | None = None
    brivudine_within_4_weeks: bool | None = None
    neutrophils_10e9_l: float | None = None
    platelets_10e9_l: float | None = None
    other_contraindication: bool | None = None


class Contraindication(BaseModel):
    """One reason capecitabine must not be started: the finding, its value, the label's rule."""

    model_config = ConfigDict(frozen=True)

    field: str
    value: Any
    reason: str


class CapecitabineDecision(Decision):
    """The course of one cycle: `dose` per administration (None when the renal function forbids
    computing one), `course_tablets` per strength (mg) for the `course_days`, every
    contraindication found, and whether it may be prescribed (`reason` says why not)."""

    arm: str
    cycle_number: int
    bsa_formula: str
    bsa_m2: float
    crcl_ml_min: float | None
    crcl_source: CrclSource | None
    dose: CapecitabineDose | None
    course_days: int
    course_tablets: dict[int, int] | None
    contraindications: tuple[Contraindication, ...]
    prescribable: bool
    reason: str


def _cycle_refusal(arm_id: str, cycle_number: int, protocol: Protocol) -> InvalidInputError | None:
    """Why this arm and cycle get no capecitabine (None: they get it); bad input raises."""
    try:
        arm = protocol.arm(arm_id)
    except ValueError as error:
        raise InvalidInputError("arm_id", arm_id, str(error).partition(": ")[2]) from None
    if isinstance(cycle_number, bool) or not isinstance(cycle_number, int) or cycle_number < 1:
        raise InvalidInputError("cycle_number", cycle_number, "must be a whole number >= 1")
    if not arm.capecitabine:
        return InvalidInputError("arm_id", arm_id, f"arm {arm_id} gives no capecitabine")
    courses = protocol.schedule.capecitabine_prrt_cycles
    if cycle_number > courses:
        return InvalidInputError(
            "cycle_number", cycle_number, f"capecitabine in cycles 1-{courses} only"
        )
    return None


def gives_capecitabine(arm_id: str, cycle_number: int, protocol: Protocol) -> bool:
    """Whether the arm gives capecitabine with this PRRT cycle (the protocol's first
    `capecitabine_prrt_cycles` cycles of an arm with capecitabine)."""
    return _cycle_refusal(arm_id, cycle_number, protocol) is None


def _crcl(
    crcl_ml_min: float | None,
    sex: Sex | None,
    age_years: float | None,
    weight_kg: float,
    creatinine_umol_l: float | None,
) -> tuple[float | None, CrclSource | None]:
    """CrCl as given, else Cockcroft-Gault from sex, age, weight and creatinine, else None."""
    if creatinine_umol_l is None:
        return crcl_ml_min, None if crcl_ml_min is None else "given"
    if crcl_ml_min is not None:
        raise InvalidInputError(
            "crcl_ml_min", crcl_ml_min, "give either CrCl or the creatinine it comes from, not both"
        )
    rule = "Cockcroft-Gault CrCl from creatinine needs it"
    if sex is None:
        raise InvalidInputError("sex", None, rule)
    if age_years is None:
        raise InvalidInputError("age_years", None, rule)
    crcl = cockcroft_gault_crcl_ml_min(sex, age_years, weight_kg, creatinine_umol_l)
    return crcl, "Cockcroft-Gault"


def _contraindications(
    crcl_ml_min: float | None, findings: CapecitabineFindings
) -> tuple[Contraindication, ...]:
    """Each finding judged by the label's `contraindications`, one at a time so each reason keeps
    the field it came from."""
    values: dict[str, object] = {"crcl_ml_min": crcl_ml_min, **dataclasses.asdict(findings)}
    other = values.pop("other_contraindication")
    found = [
        Contraindication(field=name, value=value, reason=reason)
        for name, value in values.items()
        if value is not None
        for reason in contraindications(**{name: value})  # type: ignore[arg-type]
    ]
    if other is not None and not isinstance(other, bool):
        raise InvalidInputError("other_contraindication", other, "must be True or False")
    if other:
        found.append(
            Contraindication(
                field="other_contraindication", value=True, reason=OTHER_CONTRAINDICATION
            )
        )
    return tuple(found)


def _rule(protocol: Protocol) -> str:
    settings, schedule = protocol.capecitabine, protocol.schedule
    arms = ", ".join(arm.id for arm in protocol.arms if arm.capecitabine) or "none"
    renal = (
        "30-50 ml/min: 75 % (SmPC 4.2)"
        if settings.reduce_for_moderate_renal_impairment
        else "30-50 ml/min: not reduced"
    )
    return (
        f"capecitabine {settings.dose_mg_per_m2:g} mg/m2 ({settings.bsa_formula} BSA) twice daily "
        f"x dose level, days 1-{schedule.capecitabine_days} with PRRT cycles "
        f"1-{schedule.capecitabine_prrt_cycles} of arms {arms}; CrCl (Cockcroft-Gault) "
        f"< 30 ml/min contraindicated, {renal}; label contraindications (SmPC 4.2-4.5) refuse "
        f"it; {ROUNDING_RULE}"
    )


def capecitabine_decision(
    arm_id: str,
    cycle_number: int,
    *,
    height_cm: float,
    weight_kg: float,
    protocol: Protocol,
    crcl_ml_min: float | None = None,
    sex: Sex | None = None,
    age_years: float | None = None,
    creatinine_umol_l: float | None = None,
    dose_level_percent: int = 100,
    findings: CapecitabineFindings | None = None,
) -> CapecitabineDecision:
    """The capecitabine course of PRRT cycle `cycle_number` of arm `arm_id`.

    Renal function: `crcl_ml_min` (ml/min) as given, or Cockcroft-Gault from `sex`,
    `age_years`, `weight_kg` and `creatinine_umol_l` (not both); without either it is not
    assessed and the course is not prescribable. `dose_level_percent` is the level after
    toxicity dose modifications (100, 75 or 50). An arm without capecitabine or a cycle past
    the protocol's capecitabine cycles raises InvalidInputError naming the field.
    """
    refusal = _cycle_refusal(arm_id, cycle_number, protocol)
    if refusal is not None:
        raise refusal
    found = CapecitabineFindings() if findings is None else findings
    settings, days = protocol.capecitabine, protocol.schedule.capecitabine_days
    bsa_m2 = BSA_FORMULAS[settings.bsa_formula](height_cm, weight_kg)
    crcl, source = _crcl(crcl_ml_min, sex, age_years, weight_kg, creatinine_umol_l)
    try:
        dose: CapecitabineDose | None = capecitabine_dose(
            bsa_m2,
            settings.dose_mg_per_m2,
            crcl_ml_min=crcl,
            reduce_for_moderate_renal_impairment=settings.reduce_for_moderate_renal_impairment,
            dose_level_percent=dose_level_percent,
        )
    except CapecitabineContraindicatedError:
        dose = None  # the reason is among the contraindications
    found_reasons = _contraindications(crcl, found)
    course = None
    if dose is not None:
        course = {
            strength: (count + dose.tablets_evening[strength]) * days
            for strength, count in dose.tablets_morning.items()
        }
    if found_reasons:
        reason = "contraindicated: " + "; ".join(item.reason for item in found_reasons)
    elif crcl is None:
        reason = "renal function not assessed: give CrCl, or creatinine with sex and age"
    else:
        reason = "no contraindication found"
    return CapecitabineDecision(
        kind="capecitabine",
        protocol=protocol.label,
        rule=_rule(protocol),
        inputs={
            "arm_id": arm_id,
            "cycle_number": cycle_number,
            "height_cm": height_cm,
            "weight_kg": weight_kg,
            "crcl_ml_min": crcl_ml_min,
            "sex": None if sex is None else str(sex),
            "age_years": age_years,
            "creatinine_umol_l": creatinine_umol_l,
            "dose_level_percent": dose_level_percent,
            **dataclasses.asdict(found),
        },
        arm=arm_id,
        cycle_number=cycle_number,
        bsa_formula=settings.bsa_formula,
        bsa_m2=bsa_m2,
        crcl_ml_min=crcl,
        crcl_source=source,
        dose=dose,
        course_days=days,
        course_tablets=course,
        contraindications=found_reasons,
        prescribable=dose is not None and crcl is not None and not found_reasons,
        reason=reason,
    )

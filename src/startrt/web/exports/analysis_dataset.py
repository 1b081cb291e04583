"""The trial database as an analysis dataset (startrt.analysis.dataset): what `startrt report
--database URL` analyses. Reads every site (the report is the trial's, not a user's view),
in one consistent snapshot, and keeps what is dated on or before the cut-off.

Derived columns, stated: a cycle's kidney dose is the value of the kidney the protocol limits
(START-01 v1.0: the mean of both kidneys); doses entered without a number of imaging sessions
count the protocol's dosimetry time points (START-01 v1.0: 4); kidney function over time is
each panel's measured GFR, else LMR (Bjork 2011) from its creatinine; a visit
is a distinct date on which the patient had a screening, a lab draw, an administration, a
tumour assessment, a follow-up contact or the end-of-treatment visit. Deviations are those
standing at the cut-off (not withdrawn by then), with a signature only if given by then.

Baseline is the screening record as stored, its GFR the one the criteria read
(`protocol.screening.gfr_values`); screen failures are the failing criteria of each not-eligible
patient's latest stored eligibility decision. A cycle's `activity_limited_by` is the `limiting` of
the latest decided (accepted or overridden) plan proposal for it. A dispensing's dose level and
full dose come from its prescription's stored decision: the full dose is the course's mg
(`course_days` x the daily mg in whole tablets, as the course's tablets are counted) that
`clinical.capecitabine.capecitabine_dose` gives at level 100 % with the stored BSA, mg/m2, CrCl and
renal factor.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from typing import Any

from startrt.analysis.dataset import TrialDataset, make_dataset
from startrt.clinical.capecitabine import capecitabine_dose
from startrt.clinical.ctcae import LabTerm
from startrt.clinical.egfr import lmr_egfr
from startrt.clinical.net_grade import grade_from_ki67
from startrt.clinical.sex import Sex
from startrt.protocol.capecitabine import CapecitabineDecision
from startrt.protocol.course import Course
from startrt.protocol.definition import Kidney, Protocol, protocol_in_force
from startrt.protocol.enrolment import failure_reason
from startrt.protocol.schedule import VisitKind
from startrt.protocol.screening import ScreeningRecord, gfr_values
from startrt.web.events.models import (
    AdverseEvent,
    Death,
    EndOfTreatment,
    FollowUp,
    TumourAssessment,
)
from startrt.web.exports.tables import consistent_snapshot
from startrt.web.treatment.doses import cycle_doses
from startrt.web.treatment.models import (
    Cycle,
    Deviation,
    Dispensing,
    DosimetryResult,
    LabPanel,
    PlanProposal,
)
from startrt.web.trial.models import Patient
from startrt.web.trial.screen_failures import latest_failing_decisions

Rows = list[dict[str, Any]]
EGFR_UNIT = "ml/min/1.73 m2"


def trial_dataset(cut_off: dt.date, protocol: Protocol | None = None) -> TrialDataset:
    """Every site's patients and their records dated on or before `cut_off`, under
    `protocol` (default: the version in force at the cut-off)."""
    protocol = protocol or protocol_in_force(cut_off)
    with consistent_snapshot():
        tables = {
            "patients": _patients(),
            "baseline": _baseline(protocol),
            "screen_failures": [
                {
                    "trial_id": trial_id,
                    "criterion": criterion.id,
                    "reason": failure_reason(criterion),
                }
                for trial_id, decision in latest_failing_decisions(Patient.objects.all()).items()
                for criterion in decision.failing()
            ],
            "cycles": _cycles(protocol),
            "capecitabine": _capecitabine(),
            "labs": _labs(),
            "adverse_events": _adverse_events(),
            "assessments": _assessments(),
            "follow_up": _follow_up(),
            "deaths": [
                {"trial_id": d.patient.trial_id, "died_on": d.date, "cause": d.cause}
                | {"related_to_treatment": d.related_to_treatment}
                for d in Death.objects.select_related("patient")
            ],
            "end_of_treatment": [
                {"trial_id": e.patient.trial_id, "ended_on": e.date, "reason": e.reason}
                for e in EndOfTreatment.objects.select_related("patient")
            ],
            "deviations": _deviations(cut_off),
        }
        tables["visits"] = _visits(tables)
    return make_dataset(cut_off, protocol.label, "trial database", _as_of(cut_off, tables))


def _patients() -> Rows:
    rows = []
    for patient in Patient.objects.select_related("site", "screening", "allocation").order_by("pk"):
        screening = getattr(patient, "screening", None)
        slot = getattr(patient, "allocation", None)
        rows.append(
            {
                "trial_id": patient.trial_id,
                "site": patient.site.name,
                "screened_on": _screened_on(patient),
                "eligible": None if screening is None else screening.eligible,
                "randomized_on": None if slot is None else _day(slot.allocated_at),
                "arm": None if slot is None else slot.arm,
                "treatment_arm": None if slot is None else slot.treatment_arm or None,
                "stratum": None if slot is None else slot.stratum,
            }
        )
    return rows


def _screened_on(patient: Patient) -> dt.date:
    screening = getattr(patient, "screening", None)
    recorded = None if screening is None else screening.record.get("screening_date")
    return dt.date.fromisoformat(recorded) if recorded else _day(patient.registered_at)


def _baseline(protocol: Protocol) -> Rows:
    """The screening record of every screened patient; sex as registered, the GFR the criteria
    read (measured, else the mean of LMR and CAPA), the WHO grade of the Ki-67 index."""
    rows = []
    for patient in (
        Patient.objects.filter(screening__isnull=False).select_related("screening").order_by("pk")
    ):
        record = ScreeningRecord.model_validate(patient.screening.record)
        gfr, _ = gfr_values(record, protocol.gfr.agreement_threshold)
        ki67 = record.ki67_percent
        rows.append(
            {"trial_id": patient.trial_id, "sex": patient.sex}
            | {"gfr_ml_min_173": gfr["gfr_ml_min_173"]}
            | {"who_grade": None if ki67 is None else grade_from_ki67(ki67)}
            | {name: getattr(record, name) for name in _BASELINE_FIELDS}
        )
    return rows


_BASELINE_FIELDS = (
    *("age_years", "ecog", "primary_site", "ki67_percent", "krenning_score", "fdg_pet_positive"),
    *("weight_kg", "height_cm", "prior_non_ssa_therapy", "prior_prrt"),
)


def _cycles(protocol: Protocol) -> Rows:
    """Administered cycles; `kidney_dose_gy` is the dose of the kidney the limit reads (for the
    worse kidney: each cycle's dose of the kidney with the higher cumulative dose, so that the
    cycles add up to the course model's cumulative dose)."""
    given = Cycle.objects.filter(status=Cycle.Status.ADMINISTERED)
    given = given.select_related("patient", "dosimetry").order_by("patient_id", "number")
    limited_by = _limited_by()
    rows = []
    for _, cycles in itertools.groupby(given, key=lambda cycle: cycle.patient_id):
        measured = [(c, getattr(c, "dosimetry", None)) for c in cycles]
        kidney = _limit_kidney(measured, protocol)
        for cycle, dosimetry in measured:
            rows.append(
                {
                    "trial_id": cycle.patient.trial_id,
                    "cycle": cycle.number,
                    "administered_on": _day(cycle.infusion_start),
                    "activity_gbq": cycle.administered_activity_gbq,
                    "kidney_dose_gy": None
                    if dosimetry is None
                    else cycle_doses(cycle, dosimetry).dose_gy(kidney),
                    "marrow_dose_gy": None if dosimetry is None else dosimetry.marrow_dose_gy,
                    "dosimetry_sessions": _sessions(dosimetry, protocol),
                    "inpatient_days": cycle.inpatient_days or 0.0,
                    "activity_limited_by": limited_by.get((cycle.patient_id, cycle.number)),
                }
            )
    return rows


def _limited_by() -> dict[tuple[int, int], str | None]:
    """The planner's `limiting` of each (patient, cycle)'s latest decided plan proposal."""
    decided = PlanProposal.objects.filter(status__in=PlanProposal.DECIDED)
    return {
        (patient_id, number): plan.get("limiting")
        for patient_id, number, plan in decided.order_by("id").values_list(
            "patient_id", "for_cycle", "plan"
        )
    }


def _limit_kidney(
    measured: list[tuple[Cycle, DosimetryResult | None]], protocol: Protocol
) -> Kidney:
    """The kidney the limit reads; "worse" resolved to the side with the higher cumulative dose
    over the patient's measured cycles."""
    kidney = protocol.renal_limit.kidney
    if kidney != "worse":
        return kidney
    course = Course(tuple(cycle_doses(c, d) for c, d in measured if d is not None))
    side, _ = course.worse_kidney()
    return side or "worse"


def _sessions(dosimetry: DosimetryResult | None, protocol: Protocol) -> int:
    """SPECT/CT sessions of a cycle: as recorded, else the protocol's imaging time points."""
    if dosimetry is None:
        return 0
    if dosimetry.imaging_sessions is None:
        return len(protocol.schedule.dosimetry_imaging_hours)
    return int(dosimetry.imaging_sessions)


def _capecitabine() -> Rows:
    dispensings = Dispensing.objects.select_related("prescription__cycle__patient")
    rows = []
    for d in dispensings.order_by("pk"):
        decision = CapecitabineDecision.model_validate(d.prescription.dose)
        rows.append(
            {
                "trial_id": d.prescription.cycle.patient.trial_id,
                "cycle": d.prescription.cycle.number,
                "dispensed_on": _day(d.dispensed_at),
                "tablets_500": d.tablets_500,
                "tablets_150": d.tablets_150,
                "dose_level_percent": None
                if decision.dose is None
                else decision.dose.dose_level_percent,
                "full_dose_mg": _full_dose_mg(decision),
            }
        )
    return rows


def _full_dose_mg(decision: CapecitabineDecision) -> float | None:
    """The course's mg at the 100 % dose level: the stored BSA, mg/m2 and CrCl, reduced for
    moderate renal impairment exactly when the stored dose was (its renal factor below 1)."""
    dose = decision.dose
    if dose is None:
        return None
    full = capecitabine_dose(
        dose.bsa_m2,
        dose.dose_mg_per_m2,
        crcl_ml_min=decision.crcl_ml_min,
        reduce_for_moderate_renal_impairment=dose.renal_factor < 1,
    )
    return float((full.morning_mg + full.evening_mg) * decision.course_days)


def _labs() -> Rows:
    panels: defaultdict[int, list[LabPanel]] = defaultdict(list)
    for panel in LabPanel.objects.order_by("drawn_at", "pk"):
        panels[panel.patient_id].append(panel)
    rows = []
    for patient in Patient.objects.select_related("screening").order_by("pk"):
        screening = getattr(patient, "screening", None)
        record = {} if screening is None else screening.record
        rows.extend(_gfr_rows(patient, record, _screened_on(patient), record))
        for panel in panels[patient.pk]:
            drawn_on = _day(panel.drawn_at)
            for graded in panel.grades.values():
                rows.append(
                    {
                        "trial_id": patient.trial_id,
                        "drawn_on": drawn_on,
                        "term": graded["ctcae_term"],
                        "value": graded["value"],
                        "unit": LabTerm(graded["term"]).unit,
                        "grade": graded["grade"],
                    }
                )
            rows.extend(_gfr_rows(patient, panel.values, drawn_on, record))
    return rows


def _gfr_rows(
    patient: Patient, values: dict[str, Any], drawn_on: dt.date, screening: dict[str, Any]
) -> Rows:
    """The kidney function of a panel: the measured GFR where given (the protocol's first
    choice), else LMR from creatinine with the age at screening carried forward."""
    gfr = values.get("measured_gfr_ml_min_173")
    if gfr is None and values.get("creatinine_umol_l") is not None and screening:
        screened_on = dt.date.fromisoformat(screening["screening_date"])
        age_years = screening["age_years"] + (drawn_on - screened_on).days / 365.25
        gfr = lmr_egfr(Sex(patient.sex), age_years, values["creatinine_umol_l"])
    if gfr is None:
        return []
    row = {"trial_id": patient.trial_id, "drawn_on": drawn_on, "term": "egfr"}
    return [{**row, "value": round(float(gfr), 2), "unit": EGFR_UNIT, "grade": None}]


def _adverse_events() -> Rows:
    return [
        {
            "trial_id": ae.patient.trial_id,
            "term": ae.term,
            "grade": ae.ctcae_grade,
            "serious": ae.serious,
            "onset_on": ae.onset_date,
            "attribution_prrt": ae.attribution_prrt or None,
            "attribution_capecitabine": ae.attribution_capecitabine or None,
            "outcome": ae.outcome or None,
        }
        for ae in AdverseEvent.objects.select_related("patient").order_by("pk")
    ]


def _assessments() -> Rows:
    """Each patient's time-point responses from the latest evaluation of their series."""
    latest: dict[str, TumourAssessment] = {}
    for assessment in TumourAssessment.objects.select_related("patient").order_by(
        "assessment_date", "pk"
    ):
        latest[assessment.patient.trial_id] = assessment
    return [
        {
            "trial_id": trial_id,
            "assessed_on": dt.date.fromisoformat(point["date"]),
            "response": point["overall"],
        }
        for trial_id, assessment in latest.items()
        for point in assessment.response["assessments"]
    ]


def _follow_up() -> Rows:
    return [
        {
            "trial_id": f.patient.trial_id,
            "contact_on": f.date,
            "status": f.status,
            "progression_on": f.progression_date if f.progression else None,
        }
        for f in FollowUp.objects.select_related("patient").order_by("date", "pk")
    ]


# (table, date column, the visit it records); labs are pre-cycle or other checks (`_lab_visits`)
_VISIT_DATES = (
    ("patients", "screened_on", VisitKind.SCREENING),
    ("patients", "randomized_on", VisitKind.RANDOMIZATION),
    ("cycles", "administered_on", VisitKind.CYCLE),
    ("assessments", "assessed_on", VisitKind.ASSESSMENT),
    ("follow_up", "contact_on", VisitKind.FOLLOW_UP),
    ("end_of_treatment", "ended_on", VisitKind.END_OF_TREATMENT),
)


def _deviations(cut_off: dt.date) -> Rows:
    """The protocol deviations standing at the cut-off, with their signature if signed by
    then."""
    rows = []
    deviations = Deviation.objects.select_related("patient", "cycle")
    for deviation in deviations.order_by("patient_id", "cycle__number", "recorded_at", "pk"):
        withdrawn, signed = deviation.withdrawn_at, deviation.signed_at
        if withdrawn is not None and _day(withdrawn) <= cut_off:
            continue
        signed_by_cut_off = signed is not None and _day(signed) <= cut_off
        rows.append(
            {
                "trial_id": deviation.patient.trial_id,
                "cycle": deviation.cycle.number,
                "kind": deviation.kind,
                "recorded_on": _day(deviation.recorded_at),
                "description": deviation.description,
                "reason": deviation.reason,
                "recorded_by": deviation.recorded_by,
                "signed_by": deviation.signed_by if signed_by_cut_off else None,
                "signed_on": _day(signed) if signed is not None and signed_by_cut_off else None,
                "planned_activity_gbq": deviation.planned_activity_gbq,
                "predicted_cumulative_kidney_gy": deviation.predicted_cumulative_kidney_gy,
            }
        )
    return rows


def _visits(tables: dict[str, Rows]) -> Rows:
    """One visit per patient and date, of the first kind (`VisitKind` order) recorded that day."""
    kinds: dict[tuple[str, dt.date], VisitKind] = dict(_lab_visits())
    for table, column, kind in _VISIT_DATES:
        for row in tables[table]:
            if row[column] is not None:
                key = (row["trial_id"], row[column])
                kinds[key] = min(kinds.get(key, kind), kind, key=list(VisitKind).index)
    return [
        {"trial_id": trial_id, "visit_on": day, "kind": kinds[(trial_id, day)]}
        for trial_id, day in sorted(kinds)
    ]


def _lab_visits() -> dict[tuple[str, dt.date], VisitKind]:
    """Laboratory draws: a pre-cycle panel (it belongs to a cycle) or another check."""
    panels = LabPanel.objects.select_related("patient").order_by("drawn_at", "pk")
    return {
        (panel.patient.trial_id, _day(panel.drawn_at)): VisitKind.PRE_CYCLE_LAB
        if panel.cycle_id is not None
        else VisitKind.LAB_CHECK
        for panel in panels
    }


_RANDOMIZATION = ("randomized_on", "arm", "treatment_arm", "stratum")


def _as_of(cut_off: dt.date, tables: dict[str, Rows]) -> dict[str, Rows]:
    """The tables as known at the cut-off: patients screened by then (randomized only if
    randomized by then) and the records dated on or before it."""
    patients = []
    for row in tables["patients"]:
        if row["screened_on"] > cut_off:
            continue
        if row["randomized_on"] is not None and row["randomized_on"] > cut_off:
            row = {**row, **dict.fromkeys(_RANDOMIZATION)}
        patients.append(row)
    known = {row["trial_id"] for row in patients}
    kept = {
        name: [row for row in rows if row["trial_id"] in known and _dated_by(cut_off, row)]
        for name, rows in tables.items()
        if name != "patients"
    }
    return {"patients": patients, **kept}


def _dated_by(cut_off: dt.date, row: dict[str, Any]) -> bool:
    return all(value <= cut_off for value in row.values() if isinstance(value, dt.date))


def _day(moment: dt.datetime) -> dt.date:
    return moment.date()

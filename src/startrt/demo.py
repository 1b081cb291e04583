"""`make demo`: a scripted walk through the START-01 rules on sample patients.

Screening with eGFR and eligibility per criterion, a randomization list with its fingerprint,
allocation and arm assignment, capecitabine dosing, cycle-by-cycle planning against the renal
limit with pre-cycle laboratory checks, the visit schedule, CTCAE grades and RECIST 1.1.
The kidney doses in the treatment course are sample values, as a physicist would enter them; the
last part computes a cycle's doses from a synthetic SPECT/CT study with known truth.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from startrt.clinical.bsa import dubois_bsa_m2
from startrt.clinical.capecitabine import capecitabine_dose
from startrt.clinical.ctcae import LabTerm, grade_lab
from startrt.clinical.egfr import cockcroft_gault_crcl_ml_min, egfr_panel
from startrt.clinical.recist import evaluate_series, parse_series
from startrt.clinical.sex import Sex
from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.ledger import CycleDosimetry, DoseLedger, KidneyDose
from startrt.dosimetry.outputs import write_outputs
from startrt.dosimetry.study import load_study
from startrt.imaging.phantom_study import make_phantom_study
from startrt.output import key_value_table, plain, rows_table
from startrt.protocol.arm_assignment import assign_treatment_arm
from startrt.protocol.cycle_labs import check_pre_cycle_labs
from startrt.protocol.cycle_planning import CycleDose, plan_next_cycle
from startrt.protocol.definition import Protocol, default_protocol
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.schedule import build_schedule
from startrt.protocol.screening import PatientLabs, ScreeningRecord
from startrt.protocol.stratification import patient_stratum, protocol_strata

DEMO_SEED = 20221101
SCREENING = date(2025, 2, 3)

BASE_RECORD: dict[str, Any] = {
    "screening_date": SCREENING,
    "age_years": 61,
    "weight_kg": 68,
    "height_cm": 167,
    "consent_signed": True,
    "ecog": 1,
    "histology_confirmed_well_differentiated_inoperable_net": True,
    "pheochromocytoma_or_paraganglioma": False,
    "krenning_score": 4,
    "progression_imaging_date": SCREENING - timedelta(days=150),
    "progression_confirmed_by_mdc": True,
    "prior_non_ssa_therapy": True,
    "prior_non_ssa_therapy_end_date": SCREENING - timedelta(days=70),
    "measurable_disease_recist": True,
    "prrt_treatment_of_choice": True,
    "creatinine_umol_l": 74,
    "cystatin_c_mg_l": 1.02,
    "hemoglobin_g_l": 124,
    "platelets_10e9_l": 231,
    "leukocytes_10e9_l": 6.1,
    "neutrophils_10e9_l": 3.8,
    "ast_u_l": 34,
    "ast_u_l_uln": 45,
    "alt_u_l": 41,
    "alt_u_l_uln": 45,
    "bilirubin_umol_l": 11,
    "bilirubin_umol_l_uln": 26,
    "albumin_g_l": 38,
    "childbearing_potential": False,
    "pregnant_or_lactating": False,
    "prior_prrt": False,
    "concomitant_non_ssa_systemic_therapy": False,
    "dpd_deficiency": False,
    "capecitabine_other_contraindication": False,
    "sstr_negative_lesions": False,
    "serious_uncontrolled_condition": False,
    "unable_to_comply": False,
}

# Sample cohort: (trial id, site, sex, FDG-PET positive, changes to the base record)
COHORT: list[tuple[str, str, Sex, bool, dict[str, Any]]] = [
    ("S01-LUN-001", "Lund", Sex.FEMALE, True, {}),
    ("S01-GOT-001", "Gothenburg", Sex.MALE, False, {"age_years": 70, "creatinine_umol_l": 98}),
    ("S01-UPP-001", "Uppsala", Sex.MALE, True, {"hemoglobin_g_l": 88}),
    ("S01-STO-001", "Stockholm", Sex.FEMALE, False, {"consent_signed": None}),
    ("S01-LUN-002", "Lund", Sex.MALE, False, {"ecog": 0}),
    ("S01-STO-002", "Stockholm", Sex.FEMALE, True, {"age_years": 55}),
    ("S01-LUN-003", "Lund", Sex.MALE, True, {"weight_kg": 84, "height_cm": 181}),
    ("S01-GOT-002", "Gothenburg", Sex.FEMALE, True, {"prior_prrt": True}),
    ("S01-UPP-002", "Uppsala", Sex.FEMALE, False, {"age_years": 48}),
    ("S01-LUN-004", "Lund", Sex.FEMALE, True, {"age_years": 66}),
    ("S01-GOT-003", "Gothenburg", Sex.MALE, True, {"age_years": 59}),
]

# Kidney dose per GBq found by the post-therapy dosimetry of each cycle (sample values; they
# rise about 8 % per cycle as reported in LUMEN, REFERENCE.md).
KIDNEY_GY_PER_GBQ = [0.61, 0.66, 0.70, 0.76, 0.82, 0.88, 0.95, 1.02]
PRE_CYCLE_PLATELETS = [231, 178, 96, 162, 149, 141, 137, 133]  # cycle 3 has to wait


def _screen(console: Console, protocol: Protocol) -> list[tuple[str, str, bool, ScreeningRecord]]:
    console.rule("[bold]1. Screening and eligibility")
    rows, eligible = [], []
    for trial_id, site, sex, fdg, changes in COHORT:
        record = ScreeningRecord(**{**BASE_RECORD, "sex": sex, "fdg_pet_positive": fdg, **changes})
        decision = assess_eligibility(record, protocol)
        failing = ", ".join(f"{c.id} {c.text}" for c in decision.failing()) or "-"
        missing = ", ".join(f"{c.id} {c.text}" for c in decision.missing()) or "-"
        rows.append(
            {
                "patient": trial_id,
                "site": site,
                "GFR": decision.derived["gfr_ml_min_173"],
                "eligible": decision.eligible,
                "not met": failing,
                "missing": missing,
            }
        )
        if decision.eligible:
            eligible.append((trial_id, site, fdg, record))
    console.print(
        rows_table(
            f"Eligibility ({protocol.label}: {len(protocol.eligibility.inclusion)} inclusion, "
            f"{len(protocol.eligibility.exclusion)} exclusion criteria)",
            rows,
            ["patient", "site", "GFR", "eligible", "not met", "missing"],
        )
    )
    first = eligible[0][3].model_dump()
    panel = egfr_panel(
        first["sex"],
        first["age_years"],
        first["creatinine_umol_l"],
        first["cystatin_c_mg_l"],
        first["weight_kg"],
    )
    console.print(
        key_value_table(f"Kidney function of {eligible[0][0]} (ml/min/1.73 m2)", plain(panel))
    )
    return eligible


def _randomize(
    console: Console, protocol: Protocol, eligible: list[tuple[str, str, bool, ScreeningRecord]]
) -> list[tuple[str, str, ScreeningRecord]]:
    console.rule("[bold]2. Randomization and arm assignment")
    listing = generate_block_list(
        seed=DEMO_SEED,
        n_per_stratum=40,
        strata=protocol_strata(protocol),
        arms=protocol.randomization.arms,
        ratio=protocol.randomization.ratio,
        block_sizes=protocol.randomization.block_sizes,
    )
    console.print(
        f"Concealed list: {len(listing.entries)} slots in {len(listing.parameters.strata.strata())}"
        f" strata, blocks of {listing.parameters.block_sizes}; SHA-256 published before the first"
        f" allocation:\n  [bold]{listing.sha256}[/bold]"
    )
    used: dict[tuple[tuple[str, str], ...], int] = {}
    rows, assigned = [], []
    for trial_id, site, fdg, record in eligible:
        stratum = patient_stratum(protocol, site=site, fdg_pet_positive=fdg)
        slot = listing.next_slot(stratum, used.get(stratum, 0))
        used[stratum] = used.get(stratum, 0) + 1
        arm = assign_treatment_arm(slot.arm, fdg, protocol)
        rows.append(
            {
                "patient": trial_id,
                "stratum": ";".join(f"{k}={v}" for k, v in stratum),
                "slot": slot.sequence,
                "allocation": slot.arm,
                "treatment arm": arm.arm,
                "reason": arm.reason,
            }
        )
        assigned.append((trial_id, arm.arm, record))
    console.print(
        rows_table(
            "Allocations",
            rows,
            ["patient", "stratum", "slot", "allocation", "treatment arm", "reason"],
        )
    )
    return assigned


def _treat(
    console: Console, protocol: Protocol, trial_id: str, arm: str, record: ScreeningRecord
) -> None:
    console.rule(f"[bold]3. Treatment course of {trial_id} ({arm})")
    patient = record.model_dump()
    if protocol.arm(arm).capecitabine:
        crcl = cockcroft_gault_crcl_ml_min(
            patient["sex"], patient["age_years"], patient["weight_kg"], patient["creatinine_umol_l"]
        )
        dose = capecitabine_dose(
            dubois_bsa_m2(patient["height_cm"], patient["weight_kg"]),
            protocol.capecitabine.dose_mg_per_m2,
            crcl_ml_min=crcl,
        )
        console.print(
            f"Capecitabine {protocol.capecitabine.dose_mg_per_m2:g} mg/m2 b.i.d. "
            f"(BSA {dose.bsa_m2:.2f} m2, "
            f"CrCl {crcl:.0f} ml/min): morning {dose.morning_mg} mg {dose.tablets_morning}, "
            f"evening {dose.evening_mg} mg {dose.tablets_evening}, days 1-14 of cycles 1-"
            f"{protocol.schedule.capecitabine_prrt_cycles}"
        )
    cycles: tuple[CycleDose, ...] = ()
    administered: dict[int, date] = {}
    target = SCREENING + timedelta(weeks=3)
    rows = []
    weeks_delayed = 0
    while True:
        plan = plan_next_cycle(arm, cycles, protocol)
        if plan.action == "stop":
            rows.append({"cycle": plan.next_cycle, "plan": "stop", "reason": plan.reason})
            break
        index = len(cycles)
        labs = PatientLabs(
            sex=patient["sex"],
            age_years=patient["age_years"],
            hemoglobin_g_l=118,
            platelets_10e9_l=PRE_CYCLE_PLATELETS[index] + 20 * (weeks_delayed > 0),
            leukocytes_10e9_l=4.9,
            neutrophils_10e9_l=3.1,
            creatinine_umol_l=patient["creatinine_umol_l"] + 2 * index,
            cystatin_c_mg_l=1.02 + 0.02 * index,
        )
        check = check_pre_cycle_labs(labs, protocol, weeks_delayed=weeks_delayed)
        if check.action == "delay":
            rows.append(
                {"cycle": plan.next_cycle, "date": target, "labs": "delay", "reason": check.reason}
            )
            weeks_delayed += 2
            target += timedelta(weeks=2)
            continue
        weeks_delayed = 0
        kidney_gy = round(plan.activity_gbq * KIDNEY_GY_PER_GBQ[index], 2)
        cycles = (*cycles, CycleDose(activity_gbq=plan.activity_gbq, kidney_dose_gy=kidney_gy))
        administered[plan.next_cycle] = target
        rows.append(
            {
                "cycle": plan.next_cycle,
                "date": target,
                "labs": check.action,
                "plan": plan.action,
                "GBq": plan.activity_gbq,
                "kidney Gy (dosimetry)": kidney_gy,
                "cumulative Gy": round(sum(c.kidney_dose_gy or 0 for c in cycles), 2),
                "reason": plan.reason,
            }
        )
        target += timedelta(weeks=protocol.schedule.interval_weeks)
    console.print(
        rows_table(
            f"Cycles against the {protocol.renal_limit.limit_gy:g} Gy kidney limit",
            rows,
            [
                "cycle",
                "date",
                "labs",
                "plan",
                "GBq",
                "kidney Gy (dosimetry)",
                "cumulative Gy",
                "reason",
            ],
        )
    )
    schedule = build_schedule(
        protocol.schedule,
        first_cycle_date=administered[1],
        planned_cycles=len(administered),
        administered=administered,
        with_capecitabine=protocol.arm(arm).capecitabine,
    )
    cycle_visits = [
        {
            "cycle": v.cycle_number,
            "target": v.target_date,
            "window": f"{v.earliest} .. {v.latest}",
            "given": v.visit_date,
        }
        for v in schedule.cycles()
    ]
    console.print(
        rows_table(
            "Cycle windows (10 +/- 2 weeks from the cycle actually given)",
            cycle_visits,
            ["cycle", "target", "window", "given"],
        )
    )
    console.print(
        f"{len(schedule.visits)} visits in the calendar "
        "(imaging, labs, capecitabine, end of treatment)."
    )


def _safety_and_response(console: Console) -> None:
    console.rule("[bold]4. Safety grading and tumour response")
    labs = [
        (LabTerm.PLATELETS, 68.0, 150.0, 400.0),
        (LabTerm.NEUTROPHILS, 1.2, 1.8, 7.5),
        (LabTerm.LYMPHOCYTES, 0.45, 1.1, 3.5),
        (LabTerm.CREATININE, 121.0, 45.0, 90.0),
    ]
    rows = [plain(grade_lab(term, value, lln=lln, uln=uln)) for term, value, lln, uln in labs]
    console.print(
        rows_table(
            "CTCAE v5.0 laboratory grades (nadir after cycle 2)",
            rows,
            ["term", "value", "lln", "uln", "grade", "rule"],
        )
    )
    series = parse_series(
        {
            "baseline": {
                "date": "2025-02-10",
                "lesions": [
                    {
                        "id": "L1",
                        "organ": "liver",
                        "lymph_node": False,
                        "diameter_mm": 42,
                        "target": True,
                    },
                    {
                        "id": "L2",
                        "organ": "liver",
                        "lymph_node": False,
                        "diameter_mm": 27,
                        "target": True,
                    },
                    {
                        "id": "N1",
                        "organ": "mesentery",
                        "lymph_node": True,
                        "diameter_mm": 19,
                        "target": True,
                    },
                    {
                        "id": "B1",
                        "organ": "bone",
                        "lymph_node": False,
                        "diameter_mm": None,
                        "target": False,
                    },
                ],
            },
            "follow_up": [
                {
                    "date": "2025-05-12",
                    "target_mm": {"L1": 35, "L2": 22, "N1": 14},
                    "non_target": {"B1": "present"},
                    "new_lesions": False,
                },
                {
                    "date": "2025-08-11",
                    "target_mm": {"L1": 28, "L2": 17, "N1": 11},
                    "non_target": {"B1": "present"},
                    "new_lesions": False,
                },
                {
                    "date": "2025-11-10",
                    "target_mm": {"L1": 31, "L2": 21, "N1": 12},
                    "non_target": {"B1": "present"},
                    "new_lesions": False,
                },
            ],
        }
    )
    response = evaluate_series(series)
    console.print(
        rows_table(
            f"RECIST 1.1 (best overall response: {response.best_overall.value})",
            plain(response.assessments),
            [
                "date",
                "sum_mm",
                "nadir_mm",
                "change_from_baseline_pct",
                "change_from_nadir_pct",
                "overall",
            ],
        )
    )


def _dosimetry(console: Console, protocol: Protocol, out_dir: Path) -> None:
    console.rule("[bold]5. Post-therapy dosimetry of a cycle (synthetic SPECT/CT)")
    folder = out_dir / "phantom-study"
    if folder.exists():
        shutil.rmtree(folder)
    console.print(f"Writing a 4-time-point SPECT/CT study (DICOM, RTSTRUCT, SEG) to {folder} ...")
    written = make_phantom_study(folder, seed=1, grid_size=64, ct_subdivision=2)
    truth = json.loads(written.truth_file.read_text(encoding="utf-8"))["vois"]
    study = load_study(folder)
    result = compute_dosimetry(study, method="voxel")
    files = write_outputs(result, study, out_dir / "dosimetry")
    rows = [
        {
            "VOI": name,
            "fit": voi.fit_model,
            "T_eff h": voi.effective_half_life_h,
            "TIA MBq h": voi.tia_mbq_h,
            "true TIA": truth[name]["tia_mbq_h"],
            "dose Gy": voi.dose_gy,
            "true dose": truth[name]["dose_gy"],
            "Gy/GBq": voi.dose_gy_per_gbq,
        }
        for name, voi in result.vois.items()
    ]
    columns = ["VOI", "fit", "T_eff h", "TIA MBq h", "true TIA", "dose Gy", "true dose", "Gy/GBq"]
    registered = [
        f"{tp.time_h:.0f} h" for tp in study.time_points if tp.alignment.method == "registered"
    ]
    console.print(
        rows_table(
            f"Voxel dosimetry, {len(study.time_points)} time points (registered: "
            f"{', '.join(registered) or 'none'})",
            rows,
            columns,
        )
    )
    ledger = DoseLedger().add(
        CycleDosimetry(
            cycle=1,
            activity_gbq=result.injected_activity_mbq / 1000.0,
            left_kidney=KidneyDose(
                result.vois["left_kidney"].dose_gy, result.vois["left_kidney"].bed_gy
            ),
            right_kidney=KidneyDose(
                result.vois["right_kidney"].dose_gy, result.vois["right_kidney"].bed_gy
            ),
        )
    )
    plan = plan_next_cycle("dTOC", tuple(CycleDose(**c) for c in ledger.planner_cycles()), protocol)
    console.print(f"Planner after cycle 1: {plan.action} {plan.activity_gbq:g} GBq: {plan.reason}")
    console.print(f"Dose map, RTDOSE, table and summary: {files['html'].parent}")


def main() -> None:
    console = Console(width=140)
    protocol = default_protocol()
    console.print(
        f"[bold]startrt demo[/bold]: {protocol.label}, {protocol.title} "
        f"({', '.join(protocol.registrations)})"
    )
    eligible = _screen(console, protocol)
    assigned = _randomize(console, protocol, eligible)
    personalized = [a for a in assigned if protocol.arm(a[1]).dosimetry_guided]
    standard = [a for a in assigned if not protocol.arm(a[1]).dosimetry_guided]
    capecitabine = [a for a in personalized if protocol.arm(a[1]).capecitabine]
    for trial_id, arm, record in (capecitabine or personalized)[:1] + standard[:1]:
        _treat(console, protocol, trial_id, arm, record)
    _safety_and_response(console)
    _dosimetry(console, protocol, Path("demo-out"))
    console.print(
        "\nEvery decision above is a record with its inputs, rule and protocol version "
        "(try `startrt plan-cycle --json`)."
    )


if __name__ == "__main__":
    main()

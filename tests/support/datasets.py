"""A small hand-made START-01 analysis dataset (10 screened, 7 randomized) whose counts, worst
grades, doses, resources and costs the analysis tests compute by hand.

Patients (cut-off 2025-12-31):
  P01 standard            4 cycles, kidney 32.5 Gy (over the 30 Gy limit), completed
  P02 standard            2 cycles, progression -> ended, died 2024-12-01
  P03 standard            randomized, never treated
  P04 personalized dTOC   5 cycles to 30.0 Gy, ended at the renal limit
  P05 personalized dTOC   3 cycles, ongoing
  P06 personalized CAP    4 cycles, 29.3 Gy, completed, capecitabine in 4 cycles
  P07 personalized CAP    2 cycles (cycle 2 without dosimetry), toxicity -> ended, died
  P08 eligible, not randomized; P09 not eligible (ECOG 3, Krenning 2); P10 eligibility not
  decided
Baseline (screening): see _BASELINE; P07's primary site, Ki-67 and grade were not recorded; the
WHO grades are those of the Ki-67 values (G1 < 3 %, G2 3-20 %, G3 > 20 %). Cycles held
below the full activity by the kidney limit: P04 cycle 5, P06 cycle 4. Capecitabine: P06 at
100 % in 4 cycles, P07 at 100 % then 75 % (32 200 of 46 200 mg in cycle 2).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from startrt.analysis.dataset import TABLES, TrialDataset, make_dataset

CUT_OFF = date(2025, 12, 31)
PROTOCOL = "START-01 v1.0"

_PATIENTS = [
    # trial_id, site, screened_on, eligible, randomized_on, arm, treatment_arm, fdg
    ("P01", "Lund", "2024-01-08", True, "2024-01-15", "standard", "standard", "negative"),
    ("P02", "Lund", "2024-01-10", True, "2024-01-22", "standard", "standard", "positive"),
    ("P03", "Uppsala", "2024-02-01", True, "2024-02-05", "standard", "standard", "negative"),
    ("P04", "Lund", "2024-02-03", True, "2024-02-12", "personalized", "dTOC", "negative"),
    ("P05", "Uppsala", "2024-02-20", True, "2024-03-01", "personalized", "dTOC", "negative"),
    ("P06", "Lund", "2024-03-01", True, "2024-03-11", "personalized", "CAP-dTOC", "positive"),
    ("P07", "Stockholm", "2024-03-05", True, "2024-03-18", "personalized", "CAP-dTOC", "positive"),
    ("P08", "Stockholm", "2024-03-10", True, None, None, None, None),
    ("P09", "Gothenburg", "2024-03-12", False, None, None, None, None),
    ("P10", "Gothenburg", "2024-04-01", None, None, None, None, None),
]

_CAPECITABINE_COLUMNS = (
    *("trial_id", "cycle", "dispensed_on", "tablets_500", "tablets_150"),
    *("dose_level_percent", "full_dose_mg"),
)
_BASELINE_COLUMNS = (
    "trial_id",
    "age_years",
    "sex",
    "ecog",
    "primary_site",
    "ki67_percent",
    "who_grade",
    "krenning_score",
    "fdg_pet_positive",
    "gfr_ml_min_173",
    "weight_kg",
    "height_cm",
    "prior_non_ssa_therapy",
    "prior_prrt",
)
_BASELINE = [
    ("P01", 64.0, "female", 0, "small_intestine", 2.0, "G1", 4, False, 82.0, 70, 165, False, False),
    ("P02", 71.5, "male", 1, "pancreas", 12.0, "G2", 3, True, 70.0, 82, 178, True, False),
    ("P03", 58.0, "male", 0, "small_intestine", 5.0, "G2", 3, False, 95.0, 90, 182, False, False),
    ("P04", 66.0, "female", 1, "pancreas", 8.0, "G2", 4, False, 90.0, 60, 160, True, False),
    ("P05", 49.0, "male", 0, "colon_rectum", 1.0, "G1", 3, False, 60.0, 75, 175, False, False),
    ("P06", 73.0, "female", 1, "pancreas", 25.0, "G3", 4, True, 75.0, 65, 168, True, False),
    ("P07", 61.0, "male", 1, None, None, None, 3, True, 85.0, 88, 180, None, False),
    ("P08", 55.0, "female", 0, "lung", 4.0, "G2", 3, False, 88.0, 68, 170, False, False),
    ("P09", 80.0, "male", 3, "pancreas", 60.0, "G3", 2, True, 40.0, 70, 172, True, True),
    ("P10", 45.0, "female", None, None, None, None, None, None, None, None, None, None, None),
]
_SCREEN_FAILURES = [
    ("P09", "IN03", "ECOG (inclusion: \u2264 1)"),
    ("P09", "IN06", "Krenning score (inclusion: \u2265 3)"),
]
_LIMITED_BY_KIDNEY = {("P04", 5), ("P06", 4)}

_CYCLES = {
    # trial_id: [(administered_on, GBq, kidney Gy, marrow Gy, dosimetry sessions, in-patient days)]
    "P01": [
        ("2024-02-01", 7.5, 8.0, 0.2, 1, 1),
        ("2024-04-11", 7.5, 8.0, 0.2, 1, 1),
        ("2024-06-20", 7.5, 8.0, 0.2, 1, 1),
        ("2024-08-29", 7.5, 8.5, 0.2, 1, 1),
    ],
    "P02": [("2024-02-08", 7.5, 6.0, 0.3, 1, 1), ("2024-04-18", 7.5, 6.5, 0.3, 1, 2)],
    "P04": [
        ("2024-03-01", 7.5, 6.0, 0.3, 3, 1),
        ("2024-05-10", 7.5, 6.5, 0.3, 3, 1),
        ("2024-07-19", 7.5, 7.0, 0.3, 3, 1),
        ("2024-09-27", 7.5, 7.5, 0.3, 3, 1),
        ("2024-12-06", 3.0, 3.0, 0.12, 3, 1),
    ],
    "P05": [
        ("2024-03-20", 7.5, 5.0, 0.25, 3, 1),
        ("2024-05-29", 7.5, 5.5, 0.25, 3, 1),
        ("2024-08-07", 7.5, 6.0, 0.25, 3, 1),
    ],
    "P06": [
        ("2024-04-01", 7.5, 8.0, 0.4, 3, 2),
        ("2024-06-10", 7.5, 8.0, 0.4, 3, 1),
        ("2024-08-19", 7.5, 7.5, 0.4, 3, 1),
        ("2024-10-28", 5.5, 5.8, 0.3, 3, 1),
    ],
    "P07": [("2024-04-08", 7.5, 7.0, 0.35, 3, 1), ("2024-06-17", 7.5, None, None, 0, 4)],
}

_CAPECITABINE = [
    # trial_id, cycle, dispensed_on, tablets_500, tablets_150, dose level %, full dose mg
    ("P06", 1, "2024-04-01", 84, 28, 100, 46200.0),
    ("P06", 2, "2024-06-10", 84, 28, 100, 46200.0),
    ("P06", 3, "2024-08-19", 84, 28, 100, 46200.0),
    ("P06", 4, "2024-10-28", 84, 28, 100, 46200.0),
    ("P07", 1, "2024-04-08", 84, 28, 100, 46200.0),
    ("P07", 2, "2024-06-17", 56, 28, 75, 46200.0),
]

_GRADED_LABS = [
    # trial_id, drawn_on, CTCAE term, grade
    ("P01", "2024-03-01", "Platelet count decreased", 1),
    ("P01", "2024-05-01", "Platelet count decreased", 3),
    ("P01", "2024-07-01", "Platelet count decreased", 2),
    ("P01", "2024-03-01", "Anemia", 1),
    ("P02", "2024-03-08", "Platelet count decreased", 1),
    ("P02", "2024-03-08", "Anemia", 2),
    ("P03", "2024-03-01", "Platelet count decreased", 4),  # never treated: not counted
    ("P04", "2024-02-05", "Anemia", 2),  # before the first cycle: not counted
    ("P04", "2024-04-01", "Anemia", 1),
    ("P04", "2024-08-01", "Platelet count decreased", 4),
    ("P05", "2024-04-20", "Platelet count decreased", 2),
    ("P05", "2024-04-20", "Anemia", 0),  # normal: not toxicity
    ("P06", "2024-05-01", "Neutrophil count decreased", 3),
    ("P06", "2024-07-01", "Neutrophil count decreased", 4),
    ("P06", "2024-07-01", "Platelet count decreased", 3),
    ("P07", "2024-05-08", "Neutrophil count decreased", 2),
    ("P07", "2024-05-08", "Anemia", 3),
]

_EGFR = [
    # trial_id, drawn_on, eGFR (ml/min/1.73 m2); first cycles: P01 02-01, P02 02-08, P04 03-01,
    # P05 03-20, P06 04-01, P07 04-08 (2024)
    ("P01", "2024-01-10", 82.0),
    ("P01", "2024-01-25", 80.0),
    ("P01", "2024-05-01", 76.0),
    ("P01", "2024-08-01", 72.0),
    ("P02", "2024-02-01", 70.0),
    ("P02", "2024-05-08", 66.0),
    ("P04", "2024-02-26", 90.0),
    ("P04", "2024-03-20", 88.0),  # 19 days: rounds to month 0, left out
    ("P04", "2024-06-01", 84.0),
    ("P04", "2024-09-01", 81.0),
    ("P05", "2024-03-15", 60.0),
    ("P05", "2024-06-20", 58.0),
    ("P05", "2024-07-10", 57.0),
    ("P06", "2024-03-28", 75.0),
    ("P06", "2024-07-01", 70.0),
    ("P06", "2024-10-01", 66.0),
    ("P07", "2024-04-01", 85.0),
    ("P07", "2024-07-08", 80.0),
]

_ADVERSE_EVENTS = [
    # trial_id, term, grade, serious, onset_on
    ("P01", "Nausea", 1, False, "2024-02-02"),
    ("P01", "Fatigue", 2, False, "2024-02-10"),
    ("P02", "Nausea", 2, False, "2024-02-09"),
    ("P03", "Nausea", 1, False, "2024-02-10"),  # never treated: not counted
    ("P04", "Fatigue", 1, False, "2024-02-20"),  # before the first cycle: not counted
    ("P04", "Nausea", 1, False, "2024-03-02"),
    ("P04", "Nausea", 2, False, "2024-05-11"),
    ("P05", "Fatigue", 1, False, "2024-03-25"),
    ("P06", "Diarrhea", 3, True, "2024-04-10"),
    ("P06", "Palmar-plantar erythrodysesthesia syndrome", 2, False, "2024-04-12"),
    ("P07", "Diarrhea", 4, True, "2024-06-25"),
]
_SERIOUS_DETAILS = {
    # (trial_id, onset_on): attribution to PRRT, to capecitabine, outcome
    ("P06", "2024-04-10"): ("possible", "probable", "recovered"),
    ("P07", "2024-06-25"): ("unlikely", "definite", "recovered_with_sequelae"),
}

_ASSESSMENTS = {
    "P01": [("2024-05-01", "SD"), ("2024-08-01", "PR"), ("2024-11-01", "PR")],
    "P02": [("2024-05-08", "PD")],
    "P04": [("2024-06-01", "SD"), ("2024-09-01", "PR"), ("2025-01-10", "PR")],
    "P05": [("2024-06-20", "SD"), ("2024-09-20", "PD")],
    "P06": [("2024-07-01", "PR"), ("2024-10-01", "CR")],
    "P07": [("2024-07-08", "SD")],
}

_FOLLOW_UP = [
    # trial_id, contact_on, status, progression_on
    ("P01", "2025-09-01", "alive", None),
    ("P02", "2024-10-01", "alive", "2024-05-08"),
    ("P03", "2025-03-01", "alive", None),
    ("P04", "2025-10-01", "alive", None),
    ("P05", "2025-02-01", "alive", "2024-09-20"),
    ("P06", "2025-11-01", "alive", None),
    ("P07", "2025-01-15", "alive", "2024-12-20"),
]

_DEATHS = [
    # trial_id, died_on, cause, related to treatment
    ("P02", "2024-12-01", "disease progression", False),
    ("P07", "2025-03-01", "infection", True),
]
_END_OF_TREATMENT = [
    ("P01", "2024-11-07", "completed"),
    ("P02", "2024-05-10", "progression"),
    ("P04", "2025-02-14", "renal_limit"),
    ("P06", "2025-01-06", "completed"),
    ("P07", "2024-07-01", "toxicity"),
]


def report_tables() -> dict[str, list[dict[str, Any]]]:
    """The rows of every table. Visits: a screening visit, one per cycle, one per tumour
    assessment and one per follow-up contact (P01 9, P02 5, P03 2, P04 10, P05 7, P06 8,
    P07 5; P08-P10 1 each)."""
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for trial_id, site, screened, eligible, randomized_on, arm, treatment, fdg in _PATIENTS:
        stratum = None if fdg is None else f"site={site};fdg={fdg}"
        tables["patients"].append(
            dict(zip(_PATIENT_COLUMNS, (trial_id, site, screened, eligible), strict=True))
            | {"randomized_on": randomized_on, "arm": arm, "treatment_arm": treatment}
            | {"stratum": stratum}
        )
        tables["visits"].append({"trial_id": trial_id, "visit_on": screened, "kind": "screening"})
    tables["baseline"] = _rows(_BASELINE_COLUMNS, _BASELINE)
    tables["screen_failures"] = _rows(("trial_id", "criterion", "reason"), _SCREEN_FAILURES)
    for trial_id, cycles in _CYCLES.items():
        for number, (day, gbq, kidney, marrow, sessions, inpatient) in enumerate(cycles, 1):
            tables["cycles"].append(
                {"trial_id": trial_id, "cycle": number, "administered_on": day}
                | {"activity_gbq": gbq, "kidney_dose_gy": kidney, "marrow_dose_gy": marrow}
                | {"dosimetry_sessions": sessions, "inpatient_days": inpatient}
                | {
                    "activity_limited_by": "kidney"
                    if (trial_id, number) in _LIMITED_BY_KIDNEY
                    else None
                }
            )
            tables["visits"].append({"trial_id": trial_id, "visit_on": day, "kind": "cycle"})
    tables["capecitabine"] = _rows(
        (
            "trial_id",
            "cycle",
            "dispensed_on",
            "tablets_500",
            "tablets_150",
            "dose_level_percent",
            "full_dose_mg",
        ),
        _CAPECITABINE,
    )
    tables["labs"] = [
        {"trial_id": i, "drawn_on": day, "term": term, "value": 1.0, "unit": "-", "grade": g}
        for i, day, term, g in _GRADED_LABS
    ] + [
        {"trial_id": i, "drawn_on": day, "term": "egfr", "value": value, "unit": "ml/min/1.73 m2"}
        | {"grade": None}
        for i, day, value in _EGFR
    ]
    tables["adverse_events"] = [
        row
        | dict(
            zip(
                ("attribution_prrt", "attribution_capecitabine", "outcome"),
                _SERIOUS_DETAILS.get((row["trial_id"], row["onset_on"]), (None, None, None)),
                strict=True,
            )
        )
        for row in _rows(("trial_id", "term", "grade", "serious", "onset_on"), _ADVERSE_EVENTS)
    ]
    for trial_id, assessments in _ASSESSMENTS.items():
        for day, response in assessments:
            row = {"trial_id": trial_id, "assessed_on": day, "response": response}
            tables["assessments"].append(row)
            tables["visits"].append({"trial_id": trial_id, "visit_on": day, "kind": "assessment"})
    tables["follow_up"] = _rows(("trial_id", "contact_on", "status", "progression_on"), _FOLLOW_UP)
    for trial_id, day, _, _ in _FOLLOW_UP:
        tables["visits"].append({"trial_id": trial_id, "visit_on": day, "kind": "follow_up"})
    tables["deaths"] = _rows(("trial_id", "died_on", "cause", "related_to_treatment"), _DEATHS)
    tables["end_of_treatment"] = _rows(("trial_id", "ended_on", "reason"), _END_OF_TREATMENT)
    return tables


def report_dataset(**tables: list[dict[str, Any]]) -> TrialDataset:
    """The hand-made dataset, with any table replaced by `tables`."""
    return make_dataset(CUT_OFF, PROTOCOL, "hand-made test data", report_tables() | tables)


_PATIENT_COLUMNS = ("trial_id", "site", "screened_on", "eligible")


def _rows(columns: tuple[str, ...], values: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in values]

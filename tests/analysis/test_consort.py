"""CONSORT flow counts of the hand-made dataset (tests/support/datasets.py), counted by hand."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from startrt.analysis.consort import ArmFlow, ConsortFlow, consort_flow
from startrt.analysis.consort_diagram import consort_layout, consort_svg
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.pooled import pooled_flow
from startrt.analysis.report import build_report
from startrt.protocol.vocabulary import EndOfTreatmentReason
from support.datasets import report_dataset, report_tables


def test_enrolment_counts(report_dataset: TrialDataset) -> None:
    flow = consort_flow(report_dataset)
    # P01-P10 screened; P01-P08 eligible, P09 not, P10 undecided; P08 eligible, not randomized.
    assert (flow.screened, flow.eligible, flow.not_eligible) == (10, 8, 1)
    assert (flow.eligibility_pending, flow.eligible_not_randomized, flow.randomized) == (1, 1, 7)


def test_arm_counts(report_dataset: TrialDataset) -> None:
    standard, personalized = consort_flow(report_dataset).arms
    # standard: P01 (4 cycles, completed), P02 (progression, died), P03 (never treated)
    assert standard == ArmFlow(
        arm="standard",
        allocated=3,
        treatment_arms={"standard": 3},
        treated=2,
        not_treated=1,
        completed=1,
        discontinued=1,
        discontinued_reasons={"progression": 1},
        ongoing=0,
        died=1,
        analysed=3,
    )
    # personalized: P04 renal_limit + P06 completed = 2 completed; P07 toxicity; P05 ongoing
    assert personalized == ArmFlow(
        arm="personalized",
        allocated=4,
        treatment_arms={"CAP-dTOC": 2, "dTOC": 2},
        treated=4,
        not_treated=0,
        completed=2,
        discontinued=1,
        discontinued_reasons={"toxicity": 1},
        ongoing=1,
        died=1,
        analysed=4,
    )


def test_untreated_end_and_unassigned_treatment_arm() -> None:
    tables = report_tables()
    ends = [*tables["end_of_treatment"], {"trial_id": "P03", "ended_on": "2024-03-01"}]
    ends[-1]["reason"] = "withdrawal"
    patients = [
        row | {"treatment_arm": None} if row["trial_id"] == "P05" else row
        for row in tables["patients"]
    ]
    standard, personalized = consort_flow(
        report_dataset(end_of_treatment=ends, patients=patients)
    ).arms
    # P03 withdrew before any cycle: not treated, not a discontinuation of treatment
    assert (standard.not_treated, standard.discontinued) == (1, 1)
    assert personalized.treatment_arms == {"CAP-dTOC": 2, "dTOC": 1, "not yet assigned": 1}


def test_a_dose_limit_completes_only_a_dosimetry_guided_arm() -> None:
    tables = report_tables()
    # P02 (standard, fixed 4 cycles) stopped at the renal limit: ended early, discontinued;
    # P07 (CAP-dTOC, no treatment arm recorded: every personalized arm is guided) at the
    # marrow limit: the planned end of personalized PRRT
    reasons = {"P02": "renal_limit", "P07": "marrow_limit"}
    ends = [
        row | {"reason": reasons.get(row["trial_id"], row["reason"])}
        for row in tables["end_of_treatment"]
    ]
    patients = [
        row | {"treatment_arm": None} if row["trial_id"] == "P07" else row
        for row in tables["patients"]
    ]
    standard, personalized = consort_flow(
        report_dataset(end_of_treatment=ends, patients=patients)
    ).arms
    assert (standard.completed, standard.discontinued_reasons) == (1, {"renal_limit": 1})
    assert (personalized.completed, personalized.discontinued) == (3, 0)


def test_diagram_is_svg_with_every_count(report_dataset: TrialDataset) -> None:
    svg = consort_svg(consort_flow(report_dataset))
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(  # a box's lines joined by spaces: a wrapped line reads whole
        " ".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text")
    )
    for line in (
        "Screened (n=10)",
        "Eligible (n=8)",
        "Not eligible (n=1)",
        "Eligibility pending (n=1)",
        "Randomized (n=7)",
        "Eligible, not randomized (n=1)",
        "Allocated to standard (n=3)",
        "Allocated to personalized (n=4)",
        "dTOC: n=2",
        "Treated (n=4)",
        f"{EndOfTreatmentReason.TOXICITY.label}: n=1",
        "Ongoing (n=1)",
        "Analysed, intention to treat (n=3)",
    ):
        assert line in text
    assert float(root.get("height", "0")) > 300


def test_screen_failure_reasons(report_dataset: TrialDataset) -> None:
    flow = consort_flow(report_dataset)
    # P09 failed IN03 (ECOG 3) and IN06 (Krenning 2): one patient under both reasons
    assert [(r.criterion_id, r.reason, r.patients) for r in flow.not_eligible_reasons] == [
        ("IN03", "ECOG (inclusion: \u2264 1)", 1),
        ("IN06", "Krenning score (inclusion: \u2265 3)", 1),
    ]
    assert pooled_flow(flow).not_eligible_reasons == flow.not_eligible_reasons
    (table,) = [t for t in build_report(report_dataset).tables if t.name == "consort"]
    stages = dict(zip(table.frame["stage"], table.frame["patients"], strict=True))
    assert stages["not_eligible: ECOG (inclusion: \u2264 1)"] == 1


def _two_not_eligible() -> ConsortFlow:
    """P10 also not eligible, failing IN03; P08 (eligible, e.g. rescreened) keeps an old
    failure row, which does not count."""
    tables = report_tables()
    patients = [
        row | {"eligible": False} if row["trial_id"] == "P10" else row for row in tables["patients"]
    ]
    failures = [
        *tables["screen_failures"],
        {"trial_id": "P10", "criterion": "IN03", "reason": "ECOG (inclusion: \u2264 1)"},
        {"trial_id": "P08", "criterion": "IN07", "reason": "GFR (inclusion: > 50)"},
    ]
    return consort_flow(report_dataset(patients=patients, screen_failures=failures))


def test_reasons_most_first_and_counted_per_not_eligible_patient() -> None:
    flow = _two_not_eligible()
    # ECOG: P09, P10 = 2; Krenning: P09 = 1; reasons 3 > 2 patients
    assert flow.not_eligible == 2
    assert [(r.criterion_id, r.patients) for r in flow.not_eligible_reasons] == [
        ("IN03", 2),
        ("IN06", 1),
    ]


def test_the_not_eligible_box_grows_with_its_reasons() -> None:
    flow = _two_not_eligible()
    layout = consort_layout(flow)
    screened, eligible, aside = layout.boxes[:3]
    assert aside.lines[:2] == ("Not eligible (n=2)", "  ECOG (inclusion: \u2264 1): n=2")
    words = " ".join(line.strip() for line in aside.lines)
    assert "(a patient counts under each criterion failed)" in words  # 3 reasons, 2 patients
    plain = consort_layout(replace(flow, not_eligible_reasons=()))
    # 16 px a line: the reasons' lines on top of the two lines without them
    assert aside.height - plain.boxes[2].height == 16 * (len(aside.lines) - 2)
    side = next(a for a in layout.arrows if a.y1 == a.y2)  # from the connecting line
    assert (side.x1, side.y1) == (screened.middle_x, aside.y + aside.height / 2)
    assert screened.bottom < side.y1 < eligible.y
    assert aside.bottom < eligible.y
    assert (side.x2, side.y2) == (aside.x, side.y1)
    text = " ".join(" ".join(ET.fromstring(consort_svg(flow)).itertext()).split())
    assert "Krenning score (inclusion: \u2265 3): n=1" in text

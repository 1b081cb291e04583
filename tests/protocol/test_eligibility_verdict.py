"""The eligibility verdict in one line (failing criteria first, then missing inputs, with values
and units), and the criteria in review order; expected strings written by hand from the START-01
v1.0 criteria and the shared eligible record (male, 64 y, screened 2025-03-03)."""

from __future__ import annotations

from typing import Any

from startrt.protocol.criteria import Status
from startrt.protocol.definition import Protocol
from startrt.protocol.eligibility import EligibilityDecision, assess_eligibility, verdict_text
from startrt.protocol.records import parse_record
from startrt.protocol.screening import ScreeningRecord
from support.records import eligible_screening


def decide(protocol: Protocol, **changes: Any) -> EligibilityDecision:
    record = eligible_screening(**{"sex": "male", **changes})
    return assess_eligibility(parse_record(ScreeningRecord, record, "screening"), protocol)


def test_eligible_counts_the_inclusion_criteria(protocol: Protocol) -> None:
    # IN09 (no earlier non-SSA therapy) and IN21 (no child-bearing potential) do not apply
    assert verdict_text(decide(protocol)) == (
        "Eligible: all 21 inclusion criteria met (2 not applicable), no exclusion criterion met"
    )


def test_one_failing_criterion_is_named_with_value_unit_and_rule(protocol: Protocol) -> None:
    verdict = verdict_text(decide(protocol, measured_gfr_ml_min_173=38))
    assert verdict == "Not eligible: GFR 38 mL/min/1.73 m² (inclusion: > 50)"
    assert "all inclusion criteria met" not in verdict  # the bug of issue 14


def test_failing_first_in_protocol_order_then_missing(protocol: Protocol) -> None:
    decision = decide(protocol, ecog=2, prior_prrt=True, platelets_10e9_l=None, ast_u_l_uln=None)
    assert verdict_text(decision) == (
        "Not eligible: ECOG 2 (inclusion: ≤ 1); Earlier PRRT: yes (exclusion); "
        "missing Platelets (10⁹/L), AST ULN (U/L)"
    )


def test_relative_threshold_shows_the_raw_value(protocol: Protocol) -> None:
    decision = decide(protocol, ast_u_l=150, ast_u_l_uln=40)  # 3.75 x ULN
    assert verdict_text(decision) == "Not eligible: AST 150 U/L (inclusion: < 3 × ULN)"


def test_derived_interval_has_its_own_label_and_rounding(protocol: Protocol) -> None:
    # 2020-01-01 -> 2025-03-03 is 1888 days = 62.03 months of 30.4375 days
    decision = decide(protocol, progression_imaging_date="2020-01-01")
    assert verdict_text(decision) == (
        "Not eligible: Progression imaging before screening 62.0 months (inclusion: in [1, 24])"
    )


def test_yes_no_inclusion_not_met(protocol: Protocol) -> None:
    decision = decide(protocol, consent_signed=False)
    assert verdict_text(decision) == "Not eligible: Written informed consent: no (inclusion)"


def test_undecided_names_each_missing_input_once(protocol: Protocol) -> None:
    # IN21 is undecided because child-bearing potential is unknown, not the contraception
    decision = decide(protocol, consent_signed=None, childbearing_potential=None)
    assert decision.eligible is None
    assert verdict_text(decision) == "Undecided: missing Consent signed, Childbearing potential"


def test_missing_gfr_is_the_derived_value(protocol: Protocol) -> None:
    decision = decide(protocol, measured_gfr_ml_min_173=None)  # no cystatin C: no LMR/CAPA mean
    assert verdict_text(decision) == "Undecided: missing GFR (mL/min/1.73 m²)"


def test_review_order_failing_then_missing_then_the_rest(protocol: Protocol) -> None:
    decision = decide(protocol, prior_prrt=True, hemoglobin_g_l=85, platelets_10e9_l=None)
    ordered = decision.for_review()
    assert [c.id for c in ordered[:3]] == ["IN13", "EX02", "IN14"]
    assert ordered[2].status is Status.MISSING
    assert sorted(c.id for c in ordered) == sorted(c.id for c in decision.criteria)
    rest = [c.id for c in ordered[3:]]
    assert rest == [c.id for c in decision.criteria if c.id not in {"IN13", "EX02", "IN14"}]


def test_a_decision_stored_before_fields_were_kept_reads_by_its_text(
    protocol: Protocol,
) -> None:
    stored = decide(protocol, hemoglobin_g_l=85).model_dump(mode="json")
    for criterion in stored["criteria"]:
        del criterion["field"], criterion["missing_fields"]
    decision = EligibilityDecision.model_validate(stored)
    assert verdict_text(decision) == "Not eligible: Haemoglobin > 90 g/L: 85 (inclusion)"

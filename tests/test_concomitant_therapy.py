"""Concomitant medications against START-01's prohibited therapies (EX03, IN09 of PROTOCOL.md).

Expected values are worked out by hand from the WHO ATC index (octreotide H01CB02, everolimus
L01EG02, interferon alfa-2b L03AB05, interferon beta-1a L03AB07, 177Lu-oxodotreotide V10XX04)
and the calendar (2025-03-01 minus 2025-02-02 is 27 days: February 2025 has 28)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from startrt.protocol.concomitant_therapy import (
    ConcomitantTherapySettings,
    check_concomitant_therapy,
    classify,
    parse_atc_code,
    parse_medication,
    picker_drugs,
    refuse_trial_treatment,
)
from startrt.protocol.definition import default_protocol
from startrt.protocol.vocabulary import TherapyFinding
from startrt.validation import InvalidInputError, InvalidRecordError

PROTOCOL = default_protocol()
SETTINGS = PROTOCOL.concomitant_therapy
FIRST_CYCLE = date(2025, 3, 1)


def medication(**changes: Any) -> dict[str, Any]:
    return {
        "drug_name": "Everolimus",
        "atc_code": "L01EG02",
        "indication": "pancreatic NET",
        "start_date": "2024-06-01",
        **changes,
    }


def finding(first_cycle: date | None = FIRST_CYCLE, end: date | None = None, **changes: Any) -> Any:
    record = parse_medication(medication(**changes))
    return check_concomitant_therapy(
        record, PROTOCOL, first_cycle_date=first_cycle, end_of_treatment_date=end
    )


def test_the_protocol_file_states_the_prohibited_therapies() -> None:
    assert SETTINGS is not None
    assert SETTINGS.prohibited_atc_prefixes[:2] == ("L01", "L02")
    assert "V10" in SETTINGS.prohibited_atc_prefixes
    assert SETTINGS.allowed_atc_prefixes == ("H01CB",)
    assert SETTINGS.washout_days == 28  # IN09: 4 weeks


@pytest.mark.parametrize(
    ("code", "prohibited", "prefix"),
    [
        ("H01CB02", False, "H01CB"),  # octreotide: SSA allowed
        ("H01CB03", False, "H01CB"),  # lanreotide
        ("L01EG02", True, "L01"),  # everolimus
        ("L01EX01", True, "L01"),  # sunitinib
        ("L01BC06", True, "L01"),  # capecitabine
        ("L02BA01", True, "L02"),  # tamoxifen: endocrine tumour therapy
        ("L03AB05", True, "L03AB05"),  # interferon alfa-2b
        ("L03AB07", False, None),  # interferon beta-1a: not an anti-tumour therapy
        ("V10XX04", True, "V10"),  # 177Lu-oxodotreotide: another PRRT
        ("A02BC01", False, None),  # omeprazole
        ("H02AB02", False, None),  # dexamethasone
        ("H01C", False, None),  # a shorter level whose every drug is allowed
    ],
)
def test_classify_by_the_longest_listed_prefix(code: str, prohibited: bool, prefix: str) -> None:
    assert SETTINGS is not None
    therapy = classify(code, SETTINGS)
    assert (therapy.prohibited, therapy.prefix) == (prohibited, prefix)


@pytest.mark.parametrize("code", ["L", "L03", "L03AB"])
def test_a_code_too_general_to_decide_is_refused(code: str) -> None:
    assert SETTINGS is not None
    with pytest.raises(InvalidInputError) as refused:
        classify(code, SETTINGS)
    assert refused.value.field == "atc_code"
    assert "too general" in refused.value.rule


@pytest.mark.parametrize("code", ["", "L1", "1L01", "L01EG2", "L01EG021", "L01-EG02", "everolimus"])
def test_atc_format(code: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_atc_code(code)
    assert (refused.value.field, refused.value.value) == ("atc_code", code)
    assert parse_atc_code(" l01eg02 ") == "L01EG02"


def test_ssa_is_allowed_during_the_treatment() -> None:
    check = finding(drug_name="Octreotide", atc_code="H01CB02")
    assert check.finding == TherapyFinding.ALLOWED
    assert not check.deviation


def test_an_ongoing_anti_tumour_therapy_is_a_deviation() -> None:
    check = finding()
    assert check.finding == TherapyFinding.CONCOMITANT
    assert check.deviation
    assert "systemic anti-tumour therapy other than somatostatin analogues" in check.description
    assert "ATC L01" in check.description
    assert check.protocol == "START-01 v1.0"
    assert check.inputs["first_cycle_date"] == "2025-03-01"
    assert "28 days" in check.rule


@pytest.mark.parametrize(
    ("stop", "expected", "days"),
    [
        ("2025-02-02", TherapyFinding.WASHOUT, 27),
        ("2025-02-01", TherapyFinding.PRIOR_THERAPY, 28),
        ("2025-02-28", TherapyFinding.WASHOUT, 1),
        ("2025-03-01", TherapyFinding.CONCOMITANT, None),  # stopped on the first cycle's day
        ("2025-04-01", TherapyFinding.CONCOMITANT, None),
    ],
)
def test_washout_boundary(stop: str, expected: TherapyFinding, days: int | None) -> None:
    check = finding(stop_date=stop)
    assert check.finding == expected
    assert check.days_stopped_before_first_cycle == days


def test_therapy_after_the_end_of_treatment_is_subsequent_therapy() -> None:
    end = date(2026, 1, 10)
    after = finding(end=end, start_date="2026-01-11")
    assert after.finding == TherapyFinding.SUBSEQUENT_THERAPY
    assert not after.deviation
    on_the_day = finding(end=end, start_date="2026-01-10")
    assert on_the_day.finding == TherapyFinding.CONCOMITANT


def test_without_a_first_cycle_day_the_finding_is_pending() -> None:
    check = finding(first_cycle=None)
    assert check.finding == TherapyFinding.PENDING
    assert not check.deviation
    assert finding(first_cycle=None, atc_code="H01CB02").finding == TherapyFinding.ALLOWED


def test_interferon_alfa_whatever_the_indication() -> None:
    check = finding(drug_name="Interferon alfa-2b", atc_code="L03AB05", indication="hepatitis")
    assert check.finding == TherapyFinding.CONCOMITANT


def test_stop_before_start_is_refused() -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_medication(medication(start_date="2025-02-01", stop_date="2025-01-31"))
    assert (refused.value.field, refused.value.value) == ("stop_date", "2025-01-31")


def test_record_refusals_name_each_field() -> None:
    with pytest.raises(InvalidRecordError) as refused:
        parse_medication(medication(atc_code="L1", indication="", route="by mouth"))
    fields = {problem.field for problem in refused.value.errors}
    assert fields == {"atc_code", "indication", "route"}


def test_the_trial_treatments_are_not_concomitant_medications() -> None:
    assert SETTINGS is not None
    lutetium = parse_medication(medication(drug_name="177Lu-DOTATOC", atc_code="V10XX"))
    with pytest.raises(InvalidInputError) as refused:
        refuse_trial_treatment(lutetium, SETTINGS, arm_gives_capecitabine=False)
    assert refused.value.field == "drug_name"
    capecitabine = parse_medication(medication(drug_name="Xeloda", atc_code="L01BC06"))
    with pytest.raises(InvalidInputError) as refused:
        refuse_trial_treatment(capecitabine, SETTINGS, arm_gives_capecitabine=True)
    assert refused.value.field == "atc_code"
    assert "capecitabine page" in refused.value.rule
    # in an arm without capecitabine it is a prohibited therapy like any other
    refuse_trial_treatment(capecitabine, SETTINGS, arm_gives_capecitabine=False)
    assert finding(atc_code="L01BC06").finding == TherapyFinding.CONCOMITANT


def test_settings_refuse_a_prefix_listed_twice_or_malformed() -> None:
    base = {
        "prohibited_text": "anti-tumour therapy",
        "washout_days": 28,
        "capecitabine_atc_code": "L01BC06",
    }
    with pytest.raises(ValidationError, match="listed twice"):
        ConcomitantTherapySettings(
            **base, prohibited_atc_prefixes=("L01",), allowed_atc_prefixes=("L01",)
        )
    with pytest.raises(ValidationError, match="not an ATC code"):
        ConcomitantTherapySettings(**base, prohibited_atc_prefixes=("L1",))


def test_a_protocol_without_the_section_cannot_check() -> None:
    protocol = PROTOCOL.model_copy(update={"concomitant_therapy": None})
    with pytest.raises(InvalidInputError) as refused:
        check_concomitant_therapy(
            parse_medication(medication()), protocol, first_cycle_date=FIRST_CYCLE
        )
    assert refused.value.field == "protocol"


def test_the_picker_list() -> None:
    drugs = {drug.name: drug.atc_code for drug in picker_drugs()}
    assert drugs["Octreotide"] == "H01CB02"
    assert drugs["Everolimus"] == "L01EG02"
    assert drugs["Capecitabine"] == "L01BC06"
    assert drugs["Ondansetron"] == "A04AA01"
    assert drugs["Telotristat ethyl"] == "A16AX15"
    assert all(parse_atc_code(code) == code for code in drugs.values())

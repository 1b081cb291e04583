"""The CTCAE v5.0 term list and the coding rules, against values read by hand from the published
NCI table (CTCAE v5.0, 27 November 2017)."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from startrt.clinical import ctcae_terms
from startrt.clinical.ctcae import LabTerm
from startrt.clinical.ctcae_terms import check_grade, code_adverse_event, lookup
from startrt.simulation.course import TERMS
from startrt.simulation.trial_dataset import KIDNEY_TERM
from startrt.validation import InvalidInputError

# (term, MedDRA code, SOC, grades defined) as the published table reads
PUBLISHED = [
    ("Nausea", "10028813", "Gastrointestinal disorders", (1, 2, 3)),
    ("Diarrhea", "10012727", "Gastrointestinal disorders", (1, 2, 3, 4, 5)),
    ("Vomiting", "10047700", "Gastrointestinal disorders", (1, 2, 3, 4, 5)),
    ("Platelet count decreased", "10035528", "Investigations", (1, 2, 3, 4)),
    ("Fatigue", "10016256", "General disorders and administration site conditions", (1, 2, 3)),
    (
        "Palmar-plantar erythrodysesthesia syndrome",
        "10054524",
        "Skin and subcutaneous tissue disorders",
        (1, 2, 3),
    ),
    ("Alopecia", "10001760", "Skin and subcutaneous tissue disorders", (1, 2)),
    ("Febrile neutropenia", "10016288", "Blood and lymphatic system disorders", (3, 4, 5)),
    ("Eosinophilia", "10014950", "Blood and lymphatic system disorders", (1, 3)),
    ("Anemia", "10002272", "Blood and lymphatic system disorders", (1, 2, 3, 4, 5)),
    ("Acute kidney injury", "10069339", "Renal and urinary disorders", (3, 4, 5)),
]


def test_the_whole_table_is_shipped_unchanged() -> None:
    """837 terms in 26 SOCs, one "Other, specify" term per SOC; the file is the one whose
    checksum data/README.md records."""
    entries = ctcae_terms.terms()
    assert len(entries) == 837
    assert len({entry.term for entry in entries}) == 837
    assert len(ctcae_terms.system_organ_classes()) == 26
    others = [entry for entry in entries if entry.other_specify]
    assert sorted(entry.soc for entry in others) == sorted(ctcae_terms.system_organ_classes())
    named_after_soc = [entry.term == f"{entry.soc} - Other, specify" for entry in others]
    # the table's one exception: "Musculoskeletal and connective tissue disorder - Other, specify"
    assert named_after_soc.count(False) == 1
    shipped = resources.files("startrt.clinical.data").joinpath("ctcae_v5_terms.csv")
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()
    readme = resources.files("startrt.clinical.data").joinpath("README.md").read_text("utf-8")
    assert digest in readme


@pytest.mark.parametrize(("term", "code", "soc", "grades"), PUBLISHED)
def test_terms_as_published(term: str, code: str, soc: str, grades: tuple[int, ...]) -> None:
    entry = lookup(term)
    assert (entry.meddra_code, entry.soc, entry.allowed_grades) == (code, soc, grades)
    assert not entry.other_specify
    assert entry in ctcae_terms.terms_of(soc)


def test_grade_definitions_as_published() -> None:
    platelets = lookup("Platelet count decreased")
    assert platelets.grade_definition(4) == "<25,000/mm3; <25.0 x 10e9 /L"
    assert platelets.grade_definition(1) == "<LLN - 75,000/mm3; <LLN - 75.0 x 10e9 /L"
    assert platelets.grade_definition(5) is None
    hand_foot = lookup("Palmar-plantar erythrodysesthesia syndrome")
    assert max(hand_foot.allowed_grades) == 3
    assert hand_foot.grade_definition(3) == (
        "Severe skin changes (e.g., peeling, blisters, bleeding, fissures, edema, or "
        "hyperkeratosis) with pain; limiting self care ADL"
    )
    assert "Hand-Foot Syndrome" in hand_foot.definition
    assert lookup("Nausea").grade_definition(1) == (
        "Loss of appetite without alteration in eating habits"
    )
    assert lookup("Diarrhea").grade_definition(5) == "Death"
    other = lookup("Gastrointestinal disorders - Other, specify")
    assert other.other_specify
    assert other.definition == ""  # "-" in the table: the Other, specify terms have none
    assert other.grade_definition(3) == (
        "Severe or medically significant but not immediately life-threatening; hospitalization "
        "or prolongation of existing hospitalization indicated; limiting self care ADL"
    )


def test_every_laboratory_term_graded_is_a_term_of_the_list() -> None:
    """One representation: the lab grading's CTCAE names are the table's terms."""
    socs = {term: lookup(term.ctcae_term).soc for term in LabTerm}
    assert socs[LabTerm.PLATELETS] == "Investigations"
    assert socs[LabTerm.ANEMIA] == "Blood and lymphatic system disorders"
    assert socs[LabTerm.EGFR] == "Renal and urinary disorders"  # Chronic kidney disease
    assert socs[LabTerm.ALBUMIN] == "Metabolism and nutrition disorders"  # Hypoalbuminemia


def test_a_term_not_in_the_table_is_refused_with_the_one_meant() -> None:
    with pytest.raises(InvalidInputError) as error:
        lookup("Thrombocytopenia")  # a MedDRA term, not a CTCAE v5.0 term
    assert (error.value.field, error.value.value) == ("term", "Thrombocytopenia")
    assert "is not a CTCAE v5.0" in error.value.rule
    with pytest.raises(InvalidInputError) as near:
        lookup("platelet count  DECREASED")
    assert "did you mean “Platelet count decreased”" in near.value.rule
    assert ctcae_terms.closest_term(" nausea ") == lookup("Nausea")
    assert ctcae_terms.closest_term("Nausea and vomiting") is None
    with pytest.raises(InvalidInputError) as soc:
        ctcae_terms.terms_of("Blood disorders")
    assert soc.value.field == "soc"


@pytest.mark.parametrize(
    ("term", "grade", "rule"),
    [
        ("Alopecia", 5, "defines no grade 5 for “Alopecia” (grades 1, 2)"),
        ("Alopecia", 3, "defines no grade 3 for “Alopecia” (grades 1, 2)"),
        ("Nausea", 4, "defines no grade 4 for “Nausea” (grades 1, 2, 3)"),
        ("Febrile neutropenia", 1, "(grades 3, 4, 5)"),
        ("Eosinophilia", 2, "(grades 1, 3)"),
        ("Platelet count decreased", 5, "(grades 1, 2, 3, 4)"),
        ("Nausea", 0, "defines no grade 0"),
        ("Diarrhea", 6, "defines no grade 6"),
    ],
)
def test_a_grade_the_table_marks_missing_is_refused(term: str, grade: int, rule: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        code_adverse_event(term, grade)
    assert (error.value.field, error.value.value) == ("ctcae_grade", grade)
    assert rule in error.value.rule


def test_defined_grades_are_accepted() -> None:
    assert check_grade(lookup("Eosinophilia"), 3) == 3
    coded = code_adverse_event("Palmar-plantar erythrodysesthesia syndrome", 3)
    assert (coded.term.term, coded.grade, coded.other_specify) == (
        "Palmar-plantar erythrodysesthesia syndrome",
        3,
        "",
    )


def test_other_specify_only_and_always_for_the_other_specify_terms() -> None:
    coded = code_adverse_event("Gastrointestinal disorders - Other, specify", 2, "  Bile reflux ")
    assert (coded.term.soc, coded.other_specify) == ("Gastrointestinal disorders", "Bile reflux")
    for missing in ("", "   "):
        with pytest.raises(InvalidInputError) as error:
            code_adverse_event("Gastrointestinal disorders - Other, specify", 2, missing)
        assert error.value.field == "other_specify"
        assert "required" in error.value.rule
    with pytest.raises(InvalidInputError) as refused:
        code_adverse_event("Nausea", 2, "queasy")
    assert (refused.value.field, refused.value.value) == ("other_specify", "queasy")
    with pytest.raises(InvalidInputError) as long:
        code_adverse_event("Gastrointestinal disorders - Other, specify", 2, "x" * 201)
    assert long.value.rule == "must be at most 200 characters"
    assert code_adverse_event("Cardiac disorders - Other, specify", 1, "x" * 200).grade == 1


def test_the_simulation_reports_adverse_events_with_terms_and_grades_of_the_table() -> None:
    """The in-silico trial reports nadirs and kidney function of grade 3 or 4 as adverse events
    (`simulation.trial_dataset`); the web services then code them with this table."""
    for name in (*(term.ctcae_term for term in TERMS), KIDNEY_TERM):
        assert {3, 4} <= set(lookup(name).allowed_grades), name
    assert lookup(KIDNEY_TERM).soc == "Renal and urinary disorders"

"""The CTCAE v5.0 term picker of the adverse-event forms without a browser: the term list, the
grades of the chosen term labelled with the table's descriptions (also without script, through
"Show the grades of this term"), the refusals next to their fields, and the term endpoint the
page's script reads. Grade texts as the published NCI table reads them."""

from __future__ import annotations

import re

from django.test import Client

from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent
from startrt.web.trial.models import AuditEntry, Patient
from web.conftest import Randomized
from web.test_corrections_pages import events_url, posted, signed_in
from web.test_events import Staff, adverse_event

ALOPECIA_1 = "1: Hair loss of &lt;50% of normal for that individual"
ALOPECIA_2 = "2: Hair loss of &gt;=50% normal for that individual"
OTHER_GI = "Gastrointestinal disorders - Other, specify"


def report_url(patient: Patient) -> str:
    return f"/patients/{patient.trial_id}/treatment/adverse-events/"


def grade_labels(html: str) -> list[str]:
    """The texts of the grade radio buttons, in order."""
    return [
        " ".join(text.split())
        for text in re.findall(
            r'<input type="radio" name="ctcae_grade"[^>]*>(.*?)</label>', html, re.S
        )
    ]


def test_the_form_offers_every_term_and_soc_and_plain_grades(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    page = signed_in(staff["nurse"]).get(
        f"/patients/{patient.trial_id}/treatment/?report=adverse-event"
    )
    html = page.content.decode()
    assert html.count('data-soc="') == 837
    assert '<option value="Palmar-plantar erythrodysesthesia syndrome" data-soc=' in html
    assert re.search(r'<input type="text" name="term" [^>]*list="ctcae-terms"', html)
    socs = re.search(r'<select name="soc"[^>]*>(.*?)</select>', html, re.S)
    assert socs is not None
    assert socs.group(1).count("<option") == 27  # "All" and the 26 SOCs
    assert '<option value="Investigations">Investigations</option>' in socs.group(1)
    assert grade_labels(html) == ["1", "2", "3", "4", "5"]  # no term chosen yet
    assert "pages/ctcae_picker.js" in html


def test_show_grades_labels_the_grades_of_the_term_and_saves_nothing(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    nurse = signed_in(staff["nurse"])
    shown = nurse.post(report_url(patient), {"term": "Alopecia", "show_grades": ""})
    assert shown.status_code == 200
    html = shown.content.decode()
    labels = grade_labels(html)
    assert len(labels) == 2  # CTCAE v5.0: alopecia has grades 1 and 2 only
    assert labels[0].startswith(ALOPECIA_1)
    assert labels[1].startswith(ALOPECIA_2)
    assert "Skin and subcutaneous tissue disorders · MedDRA 10001760" in html
    assert 'class="ctcae-other-specify" hidden' in html
    assert shown.context["adverse_event_form"].initial["soc"] == (
        "Skin and subcutaneous tissue disorders"
    )
    assert "errorlist" not in html  # nothing judged yet
    assert not AdverseEvent.objects.exists()
    other = nurse.post(report_url(patient), {"term": OTHER_GI, "show_grades": ""})
    assert 'class="ctcae-other-specify" hidden' not in other.content.decode()
    assert grade_labels(other.content.decode())[4] == "5: Death"


def test_the_report_is_refused_next_to_the_field_and_saved_when_valid(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    nurse = signed_in(staff["nurse"])
    values = posted(adverse_event(term="Alopecia", ctcae_grade=3, resolved_date=None))
    values["outcome"] = "recovering"
    refused = nurse.post(report_url(patient), values)
    assert refused.status_code == 422
    errors = refused.context["adverse_event_form"].errors
    assert errors["ctcae_grade"] == [
        "“3”: CTCAE v5.0 (NCI, 27 November 2017) defines no grade 3 for “Alopecia” (grades 1, 2)"
    ]
    assert len(grade_labels(refused.content.decode())) == 2  # the term's grades, described
    missing = nurse.post(report_url(patient), {**values, "term": OTHER_GI, "ctcae_grade": "2"})
    assert missing.context["adverse_event_form"].errors["other_specify"] == [
        f"Name the event: required for “{OTHER_GI}”"
    ]
    assert 'class="ctcae-other-specify" hidden' not in missing.content.decode()
    unknown = nurse.post(report_url(patient), {**values, "term": "Hair loss"})
    assert "is not a CTCAE v5.0" in unknown.context["adverse_event_form"].errors["term"][0]
    assert not AdverseEvent.objects.exists()
    saved = nurse.post(
        report_url(patient),
        {**values, "term": OTHER_GI, "other_specify": "Bile reflux", "ctcae_grade": "2"},
    )
    assert saved.status_code == 302
    event = AdverseEvent.objects.get()
    assert (event.term, event.other_specify, event.soc) == (
        OTHER_GI,
        "Bile reflux",
        "Gastrointestinal disorders",
    )
    overview = nurse.get(saved["Location"]).content.decode()
    assert f"{OTHER_GI}: Bile reflux" in overview
    assert AuditEntry.objects.filter(table="events_adverseevent", action="insert").count() == 1


def test_the_correction_page_shows_the_stored_term_s_grades(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    event = events.report_adverse_event(staff["nurse"], patient, adverse_event())
    investigator = signed_in(staff["investigator"])
    url = events_url(patient, f"adverse-event/{event.pk}/")
    html = investigator.get(url).content.decode()
    assert grade_labels(html) == [
        "1: Loss of appetite without alteration in eating habits",
        "2: Oral intake decreased without significant weight loss, dehydration or malnutrition",
        "3: Inadequate oral caloric or fluid intake; tube feeding, TPN, or hospitalization "
        "indicated",
    ]
    assert re.search(r'<input type="radio" name="ctcae_grade" value="2"[^>]*checked', html)
    data = {
        **posted(adverse_event(term="Vomiting")),
        "expected_version": "1",
        "correction_reason": "source notes: vomiting",
        "show_grades": "",
    }
    shown = investigator.post(url, data)
    assert shown.status_code == 200
    assert len(grade_labels(shown.content.decode())) == 5  # vomiting: grades 1-5
    assert AdverseEvent.objects.get().version == 1  # nothing saved
    del data["show_grades"]
    assert investigator.post(url, data).status_code == 302
    assert AdverseEvent.objects.get().term == "Vomiting"


def test_the_term_endpoint(staff: Staff) -> None:
    nurse = signed_in(staff["nurse"])
    nausea = nurse.get("/ctcae/term/", {"term": "Nausea"})
    assert nausea.status_code == 200
    body = nausea.json()
    assert (body["soc"], body["meddra_code"], body["other_specify"]) == (
        "Gastrointestinal disorders",
        "10028813",
        False,
    )
    assert [g["grade"] for g in body["grades"]] == [1, 2, 3]
    assert (
        body["definition"]
        == "A disorder characterized by a queasy sensation and/or the urge to vomit."
    )
    assert nurse.get("/ctcae/term/", {"term": "nausea"}).status_code == 404
    assert nurse.get("/ctcae/term/").status_code == 404
    anonymous = Client().get("/ctcae/term/", {"term": "Nausea"})
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]

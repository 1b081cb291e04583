"""The screening form's "Primary site" (issue 16): shown with its label and the vocabulary's
labels in the "Tumour and imaging" group, saved into the screening record, shown as saved."""

from __future__ import annotations

from django.test import Client

from startrt.web.trial import services
from startrt.web.trial.models import Screening
from support.records import eligible_screening
from web.test_pages import Sites, Staff, form_data, signed_in

PAGE = "/patients/S01-LUN-001/"


def test_the_screening_form_shows_and_saves_the_primary_site(
    client: Client, staff: Staff, sites: Sites
) -> None:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    signed_in(client, staff["nurse"])
    html = client.get(PAGE).content.decode()
    group = html[html.index("<legend>Tumour and imaging</legend>") :]
    group = group[: group.index("</fieldset>")]
    assert '<label for="id_primary_site">Primary site:</label>' in group
    assert '<option value="small_intestine">Small intestine (jejunum, ileum)</option>' in group
    assert '<option value="" selected>' in group  # not recorded until chosen

    posted = form_data(eligible_screening(), primary_site="small_intestine")
    assert client.post(f"{PAGE}screening/", posted).status_code == 302
    record = Screening.objects.get(patient=patient).record
    assert record["primary_site"] == "small_intestine"
    shown = client.get(PAGE).content.decode()
    assert '<option value="small_intestine" selected>' in shown

    refused = client.post(
        f"{PAGE}screening/",
        form_data(eligible_screening(), primary_site="liver", reason="typo", expected_version=1),
    )
    assert refused.status_code == 422
    assert "primary_site" in refused.context["screening_form"].errors
    assert Screening.objects.get(patient=patient).record["primary_site"] == "small_intestine"

"""Export headers for people (issue 14, item 2): the ODM file keeps the machine names (the data
contract) and gives each item the label people read, from `startrt.fields`."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from startrt.web.exports.odm_export import export_odm
from web.test_exports import NS, Staff, trial  # noqa: F401 (the fixture)


@pytest.mark.usefixtures("trial")
def test_each_odm_item_keeps_its_name_and_carries_its_label(staff: Staff) -> None:
    root = ET.fromstring(export_odm(staff["statistician"]))
    items = {str(item.get("OID")): item for item in root.iterfind(".//odm:ItemDef", NS)}

    def question(oid: str) -> tuple[str | None, str | None]:
        text = items[oid].find("odm:Question/odm:TranslatedText", NS)
        assert text is not None
        return items[oid].get("Name"), text.text

    assert question("IT.TRIAL.CONSENT.SIGNED_ON") == ("signed_on", "Signed on")
    assert question("IT.TRIAL.PATIENT.TRIAL_ID") == ("trial_id", "Trial ID")
    assert question("IT.TREATMENT.DOSIMETRYRESULT.LEFT_KIDNEY_DOSE_GY") == (
        "left_kidney_dose_gy",
        "Left kidney dose (Gy)",
    )
    assert question("IT.TREATMENT.CYCLE.ADMINISTERED_ACTIVITY_GBQ") == (
        "administered_activity_gbq",
        "Administered activity (GBq)",
    )

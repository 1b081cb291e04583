"""Allocation concealment: nothing site staff can read (the API, the pages, the audit CSV, the
exports) tells a slot's place in the randomization list (its block, block size, sequence or
row id); the statistician still reads the list. Checked on audit entries as the randomization
writes them now and as it wrote them before (with the slot's whole row)."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import RandomizationList, generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.exports.csv_export import export_csv
from startrt.web.exports.odm_export import export_odm
from startrt.web.signing import services as signing
from startrt.web.signing.models import Signature
from startrt.web.trial import audit, services
from startrt.web.trial.models import Membership, Role, Site, Slot
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
PATIENTS = 12
STRATUM = "site=Lund;fdg=negative"
SLOT_IDENTITY = ("id", "sequence", "block", "block_size")
# what the randomization wrote before it stopped recording the slot's place in the list
LEGACY_REASON = "randomization (allocation of the next slot)"
Staff = dict[str, User]


def block_list() -> RandomizationList:
    return generate_block_list(
        seed=20241, n_per_stratum=2 * PATIENTS, strata=protocol_strata(default_protocol())
    )


@pytest.fixture(params=[False, True], ids=["written-now", "written-before"])
def trial(request: pytest.FixtureRequest, staff: Staff, sites: dict[str, Site]) -> list[str]:
    """12 Lund patients (FDG-PET negative: one stratum) randomized by the investigator, each
    randomization signed as the page signs it; "written-before": each also carries the audit
    entry the randomization wrote before (the slot's whole row, old and new)."""
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", block_list())
    investigator = staff["investigator"]
    signed_in = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
    signed_in.user = investigator
    trial_ids = []
    for number in range(1, PATIENTS + 1):
        trial_id = f"S01-LUN-{number:03d}"
        patient = services.register_patient(staff["nurse"], sites["Lund"], trial_id, "male")
        services.record_screening(staff["nurse"], patient, eligible_screening())
        signing.sign_action(
            signed_in,
            PASSWORD,
            "responsibility",
            lambda p=patient: services.randomize(investigator, p),
        )
        if request.param:
            slot = Slot.objects.get(patient=patient)
            free = {**audit.snapshot(slot), "patient": None, "treatment_arm": ""}
            free.update(allocated_at=None, allocated_by="")
            audit.record(
                investigator,
                "update",
                slot,
                old=free,
                new=audit.snapshot(slot),
                reason=LEGACY_REASON,
                patient_trial_id=trial_id,
            )
        trial_ids.append(trial_id)
    return trial_ids


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_audit(client: Client, trial_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/patients/{trial_id}/audit", {"limit": 1000})
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()
    return entries


def csv_audit(text: str) -> list[dict[str, Any]]:
    """Rows of an audit trail CSV with old and new as JSON again (a leading ' undone)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for side in ("old", "new"):
            value = row[side].removeprefix("'")
            row[side] = json.loads(value) if value else None
    return rows


def slot_leaks(entries: list[dict[str, Any]]) -> list[str]:
    """What of a slot's place in the list the audit entries show: a slot entry's row id and
    identity fields, a slot signature's record id and content hash."""
    leaks = []
    for entry in entries:
        for side in ("old", "new"):
            values = entry[side] or {}
            if entry["table"] == "trial_slot":
                leaks += [f"{side}.{name}" for name in SLOT_IDENTITY if name in values]
            if values.get("kind") == "trial.slot":
                leaks += [f"{side}.{n}" for n in ("record_id", "content_sha256") if n in values]
        if entry["table"] == "trial_slot" and entry["row_id"]:
            leaks.append(f"row_id {entry['row_id']}")
    return leaks


def text_leaks(text: str) -> list[str]:
    """Slot identities in page text: the words, and a slot's id after its record name
    (`trial_slot #17` in the audit trail, `trial.slot #17` among the signatures), as field
    names or labels."""
    found = re.findall(r"sequence|block[_ ]size|position", text, re.IGNORECASE)
    found += re.findall(r"trial[._]slot #\d+", text)
    return found


def normalized(entries: list[dict[str, Any]], trial_id: str) -> str:
    """A patient's audit trail with what is the patient's own (trial ID, row ids of the
    patient's records, times, the signature's id) made alike: only slot identities and the
    allocated arm can then tell two patients apart."""
    shown = []
    for entry in entries:
        entry = {**entry, "at": "<at>"}
        if entry["table"] != "trial_slot":
            entry["row_id"] = "<row>"
        for side in ("old", "new"):
            values = dict(entry[side] or {})
            for name in ("patient", "made_at", "signed_at", "registered_at", "updated_at"):
                if values.get(name) is not None:
                    values[name] = f"<{name}>"
            if entry["table"] != "trial_slot":
                values.pop("id", None)
            if values.get("allocated_at"):
                values["allocated_at"] = "<allocated_at>"
            entry[side] = values
        shown.append(entry)
    return json.dumps(shown, sort_keys=True).replace(trial_id, "<trial_id>")


def arm_of(trial_id: str) -> str:
    return str(Slot.objects.get(patient__trial_id=trial_id).treatment_arm)


@pytest.mark.parametrize("who", ["nurse", "investigator", "monitor"])
def test_site_staff_read_no_slot_identity_in_the_api(
    staff: Staff, trial: list[str], who: str
) -> None:
    client = client_for(staff[who])
    for trial_id in trial:
        entries = api_audit(client, trial_id)
        assert {"trial_slot", "signing_signature"} <= {e["table"] for e in entries}
        assert slot_leaks(entries) == []
        patient = client.get(f"/api/patients/{trial_id}").json()
        assert patient["treatment_arm"] == arm_of(trial_id)
        decisions = client.get(f"/api/patients/{trial_id}/decisions").json()
        assert not text_leaks(json.dumps(decisions))
        assert all(set(SLOT_IDENTITY).isdisjoint(d["record"]["inputs"]) for d in decisions)


@pytest.mark.parametrize("who", ["nurse", "investigator"])
def test_site_staff_read_no_slot_identity_on_the_pages(
    staff: Staff, trial: list[str], who: str
) -> None:
    client = client_for(staff[who])
    for trial_id in trial:
        patient = client.get(f"/patients/{trial_id}/").content.decode()
        trail = client.get(f"/patients/{trial_id}/audit/").content.decode()
        assert ("Randomization allocation" in patient, "Randomization allocation" in trail) == (
            True,
            True,
        )
        assert text_leaks(patient) == []
        assert text_leaks(trail) == []


def test_the_investigators_audit_csv_shows_no_slot_identity(staff: Staff, trial: list[str]) -> None:
    client = client_for(staff["investigator"])
    for trial_id in trial:
        response = client.get(f"/patients/{trial_id}/audit.csv")
        assert response.status_code == 200
        rows = csv_audit(response.content.decode())
        assert "trial_slot" in {row["table"] for row in rows}
        assert slot_leaks(rows) == []


@pytest.mark.parametrize("who", ["monitor", "administrator"])
def test_exports_of_blinded_roles_show_no_slot_identity(
    staff: Staff, trial: list[str], who: str, tmp_path: Path
) -> None:
    user = staff["monitor"] if who == "monitor" else administrator()
    files = {path.name: path for path in export_csv(user, tmp_path)}
    with files["trial_slot.csv"].open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        slots = list(reader)
        assert set(SLOT_IDENTITY).isdisjoint(reader.fieldnames or [])
    assert sorted(row["trial_id"].removeprefix("'") for row in slots) == trial
    rows = csv_audit(files["audit_trail.csv"].read_text(encoding="utf-8"))
    assert slot_leaks(rows) == []
    root = ET.fromstring(export_odm(user))
    oids = {str(item.get("OID")) for item in root.iter("{http://www.cdisc.org/ns/odm/v1.3}ItemDef")}
    assert "IT.TRIAL.SLOT.ARM" in oids
    assert not {f"IT.TRIAL.SLOT.{name.upper()}" for name in SLOT_IDENTITY} & oids


def administrator() -> User:
    user = User.objects.create_user("admin", password=PASSWORD)
    Membership.objects.create(user=user, site=None, role=Role.ADMINISTRATOR)
    return user


def test_nothing_but_the_arm_tells_two_allocations_apart(staff: Staff, trial: list[str]) -> None:
    """A predictor of the next allocation from what site staff read does no better than
    chance: each patient's audit trail, with what is the patient's own made alike, is one of
    two texts, one per arm, so it holds nothing about the list beyond the arms allocated."""
    for who in ("nurse", "investigator"):
        client = client_for(staff[who])
        views: dict[str, set[str]] = {}
        for trial_id in trial:
            text = normalized(api_audit(client, trial_id), trial_id)
            views.setdefault(arm_of(trial_id), set()).add(text)
        assert len(views) == 2  # both arms were allocated
        assert [len(texts) for texts in views.values()] == [1, 1]


def test_the_statistician_still_reads_the_list(
    staff: Staff, trial: list[str], tmp_path: Path
) -> None:
    client = client_for(staff["statistician"])
    entries = api_audit(client, trial[0])
    slot = Slot.objects.get(patient__trial_id=trial[0])
    allocation, *before = [e for e in entries if e["table"] == "trial_slot"]
    assert allocation["row_id"] == str(slot.pk)
    assert allocation["new"]["list_sha256"] == block_list().sha256
    for entry in before:  # as the randomization wrote it before: shown whole
        assert (entry["row_id"], entry["new"]["sequence"]) == (str(slot.pk), slot.sequence)
        assert (entry["new"]["block"], entry["new"]["block_size"]) == (slot.block, slot.block_size)
    files = {path.name: path for path in export_csv(staff["statistician"], tmp_path)}
    with files["trial_slot.csv"].open(encoding="utf-8", newline="") as handle:
        (row,) = [row for row in csv.DictReader(handle) if trial[0] in row["trial_id"]]
    assert (row["id"], row["sequence"]) == (str(slot.pk), str(slot.sequence))
    page = client.get(f"/patients/{trial[0]}/").content.decode()
    signature = Signature.objects.get(kind="trial.slot", record_id=str(slot.pk))
    assert signature.content_sha256[:12] in page  # the slot signature's hash, hidden from others

"""Electronic signatures: password re-checked (and throttled), who/when/what/meaning and a hash
of the content stored, the record locked until a reasoned, audited unlock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.test import RequestFactory

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.validation import InvalidInputError
from startrt.web.signing import services as signing
from startrt.web.signing.models import Meaning, Signature
from startrt.web.treatment.models import Cycle
from startrt.web.trial import audit, services
from startrt.web.trial.models import AuditEntry, Screening, Site, Slot
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
Staff = dict[str, User]
RequestAs = Callable[[User], HttpRequest]


@pytest.fixture
def request_as() -> RequestAs:
    """A request signed in as `user` (axes needs the request to count failed passwords)."""

    def make(user: User) -> HttpRequest:
        request = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
        request.user = user
        return request

    return make


@pytest.fixture
def screening(staff: Staff, sites: dict[str, Site]) -> Screening:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    return services.record_screening(staff["nurse"], patient, eligible_screening())


def test_a_signature_stores_who_when_what_meaning_and_the_content_hash(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    signature = signing.sign(
        request_as(staff["nurse"]), PASSWORD, "trial.screening", screening.pk, "authorship"
    )
    stored = Signature.objects.get()
    assert stored == signature
    assert (stored.signer, stored.signer_username) == (staff["nurse"], "nurse.lund")
    assert (stored.kind, stored.record_id, stored.meaning) == (
        "trial.screening",
        str(screening.pk),
        Meaning.AUTHORSHIP,
    )
    assert (stored.patient, stored.signed_at is not None) == (screening.patient, True)
    # the hash, recomputed here from the stored row: SHA-256 of its sorted, compact JSON
    row = Screening.objects.get(pk=screening.pk)
    text = json.dumps(audit.snapshot(row), sort_keys=True, separators=(",", ":"))
    assert stored.content_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert signing.content_unchanged(stored)
    entry = AuditEntry.objects.get(table="signing_signature", action="insert")
    assert (entry.username, entry.patient_trial_id) == ("nurse.lund", "S01-LUN-001")
    assert entry.new["meaning"] == "authorship"


def test_a_change_behind_the_services_back_shows_in_the_hash(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    signature = signing.sign(
        request_as(staff["nurse"]), PASSWORD, "trial.screening", screening.pk, "authorship"
    )
    Screening.objects.filter(pk=screening.pk).update(record={**screening.record, "ecog": 2})
    assert not signing.content_unchanged(signature)


@pytest.mark.parametrize(
    ("signer", "password"),
    [("nurse", "wrong password"), ("nurse", ""), ("investigator", PASSWORD + "x")],
)
def test_a_wrong_password_signs_nothing(
    staff: Staff, screening: Screening, request_as: RequestAs, signer: str, password: str
) -> None:
    with pytest.raises(signing.SignatureRefusedError, match="password"):
        signing.sign(
            request_as(staff[signer]), password, "trial.screening", screening.pk, "authorship"
        )
    assert not Signature.objects.exists()
    assert not signing.is_locked("trial.screening", screening.pk)


def test_wrong_signature_passwords_lock_signing_not_the_login(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    nurse = staff["nurse"]
    for _ in range(5):  # SIGNING_FAILURE_LIMIT = 5
        with pytest.raises(signing.SignatureRefusedError):
            signing.sign(request_as(nurse), "guess", "trial.screening", screening.pk, "authorship")
    assert not AccessAttempt.objects.exists()  # not counted as failed logins (axes)
    # signing locked: even the right password no longer signs
    with pytest.raises(signing.SignatureRefusedError, match="signing is locked"):
        signing.sign(request_as(nurse), PASSWORD, "trial.screening", screening.pk, "authorship")
    assert not Signature.objects.exists()


def test_who_may_sign_what(staff: Staff, screening: Screening, request_as: RequestAs) -> None:
    with pytest.raises(PermissionDenied):  # nurses author; they do not approve
        signing.sign(
            request_as(staff["nurse"]), PASSWORD, "trial.screening", screening.pk, "approval"
        )
    with pytest.raises(PermissionDenied):  # statisticians see every site but sign nothing
        signing.sign(
            request_as(staff["statistician"]), PASSWORD, "trial.screening", screening.pk, "review"
        )
    with pytest.raises(Http404):  # another site's record does not exist for this user
        signing.sign(
            request_as(staff["uppsala"]), PASSWORD, "trial.screening", screening.pk, "review"
        )
    review = signing.sign(
        request_as(staff["monitor"]), PASSWORD, "trial.screening", screening.pk, "review"
    )
    assert review.signer_username == "monitor"


@pytest.mark.parametrize(
    "kind",
    [
        "trial.nothing",
        "no-dot",
        "trial.site",  # a site belongs to no patient
        "signing.signature",
    ],
)
def test_unsignable_kinds_are_refused_naming_the_field(
    staff: Staff, sites: dict[str, Site], request_as: RequestAs, kind: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        signing.sign(request_as(staff["investigator"]), PASSWORD, kind, sites["Lund"].pk, "review")
    assert (error.value.field, error.value.value) == ("kind", kind)


def test_bad_meaning_missing_record_and_double_signature_are_refused(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    nurse = request_as(staff["nurse"])
    with pytest.raises(InvalidInputError, match="meaning='blessing'"):
        signing.sign(nurse, PASSWORD, "trial.screening", screening.pk, "blessing")
    for missing in (screening.pk + 1000, "not-a-number"):
        with pytest.raises(Http404):
            signing.sign(nurse, PASSWORD, "trial.screening", missing, "authorship")
    signing.sign(nurse, PASSWORD, "trial.screening", screening.pk, "authorship")
    with pytest.raises(InvalidInputError, match="already signed"):
        signing.sign(nurse, PASSWORD, "trial.screening", screening.pk, "authorship")
    investigator = request_as(staff["investigator"])
    signing.sign(investigator, PASSWORD, "trial.screening", screening.pk, "approval")
    assert Signature.objects.count() == 2


def test_a_signed_record_is_locked_until_a_reasoned_unlock(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    kind = "trial.screening"
    assert not signing.is_locked(kind, screening.pk)
    signature = signing.sign(request_as(staff["nurse"]), PASSWORD, kind, screening.pk, "authorship")
    assert signing.is_locked(kind, screening.pk)
    assert signing.is_locked(kind, str(screening.pk))
    with pytest.raises(signing.RecordLockedError, match=r"signed \(authorship\) by nurse\.lund"):
        signing.ensure_unlocked(kind, screening.pk)

    investigator = request_as(staff["investigator"])
    for blank in ("", "   ", "Hb\u202ecorrected"):  # blank, or hiding a bidi override
        with pytest.raises(InvalidInputError, match="reason"):
            signing.unlock(investigator, PASSWORD, signature, blank)
    with pytest.raises(signing.SignatureRefusedError):
        signing.unlock(investigator, "wrong", signature, "Hb corrected")
    with pytest.raises(Http404):
        signing.unlock(request_as(staff["uppsala"]), PASSWORD, signature, "Hb corrected")
    with pytest.raises(PermissionDenied):  # only the signer or an investigator at the site
        signing.unlock(request_as(staff["monitor"]), PASSWORD, signature, "Hb corrected")
    assert signing.is_locked(kind, screening.pk)

    unlocked = signing.unlock(investigator, PASSWORD, signature, "  Hb corrected  ")
    assert (unlocked.unlocked_by, unlocked.unlock_reason) == ("investigator.lund", "Hb corrected")
    assert unlocked.unlocked_at is not None
    assert not signing.is_locked(kind, screening.pk)
    signing.ensure_unlocked(kind, screening.pk)
    entry = AuditEntry.objects.get(table="signing_signature", action="update")
    assert (entry.reason, entry.username) == ("Hb corrected", "investigator.lund")
    assert (entry.old["unlocked_at"], entry.new["unlock_reason"]) == (None, "Hb corrected")
    with pytest.raises(InvalidInputError, match="already unlocked"):
        signing.unlock(investigator, PASSWORD, signature, "again")
    # the signer may sign again once unlocked
    signing.sign(request_as(staff["nurse"]), PASSWORD, kind, screening.pk, "authorship")
    assert signing.is_locked(kind, screening.pk)


def test_the_signer_may_unlock_their_own_signature(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    nurse = request_as(staff["nurse"])
    signature = signing.sign(nurse, PASSWORD, "trial.screening", screening.pk, "authorship")
    signing.unlock(nurse, PASSWORD, signature, "signed too early")
    assert not signing.is_locked("trial.screening", screening.pk)


def test_a_signed_action_happens_only_with_the_right_password(
    staff: Staff, sites: dict[str, Site], screening: Screening, request_as: RequestAs
) -> None:
    listing = generate_block_list(
        seed=4242, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    investigator = staff["investigator"]
    patient = screening.patient

    def randomize() -> Slot:
        return services.randomize(investigator, patient)

    with pytest.raises(signing.SignatureRefusedError):
        signing.sign_action(request_as(investigator), "wrong", "responsibility", randomize)
    assert not Slot.objects.filter(patient=patient).exists()
    with pytest.raises(PermissionDenied):  # the action refused: nothing signed, nothing taken
        signing.sign_action(
            request_as(staff["nurse"]),
            PASSWORD,
            "responsibility",
            lambda: services.randomize(staff["nurse"], patient),
        )
    assert not Signature.objects.exists()

    signature = signing.sign_action(request_as(investigator), PASSWORD, "responsibility", randomize)
    slot = Slot.objects.get(patient=patient)
    assert (signature.kind, signature.record_id) == ("trial.slot", str(slot.pk))
    assert signing.content_unchanged(signature)


def test_a_model_naming_signed_fields_is_hashed_on_those_only(
    staff: Staff, sites: dict[str, Site]
) -> None:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    cycle = Cycle.objects.create(
        patient=patient, number=1, planned_date=date(2025, 3, 17), planned_activity_gbq=7.5
    )
    # recomputed here: SHA-256 of the sorted, compact JSON of the fields Cycle names
    values = {name: audit.snapshot(cycle)[name] for name in Cycle.signed_fields}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    assert signing.content_sha256(cycle) == hashlib.sha256(text.encode()).hexdigest()
    before = signing.content_sha256(cycle)
    cycle.lot = "LU-1"  # not a signed field
    assert signing.content_sha256(cycle) == before
    cycle.planned_activity_gbq = 7.4
    assert signing.content_sha256(cycle) != before


def test_unlock_record_ends_every_active_signature_of_the_record_at_once(
    staff: Staff, screening: Screening, request_as: RequestAs
) -> None:
    kind = "trial.screening"
    signing.sign(request_as(staff["nurse"]), PASSWORD, kind, screening.pk, "authorship")
    signing.sign(request_as(staff["investigator"]), PASSWORD, kind, screening.pk, "approval")
    with pytest.raises(PermissionDenied):  # the nurse may not end the investigator's signature
        signing.unlock_record(request_as(staff["nurse"]), PASSWORD, kind, screening.pk, "r")
    assert Signature.objects.filter(unlocked_at__isnull=True).count() == 2
    with pytest.raises(InvalidInputError, match="reason"):
        signing.unlock_record(request_as(staff["investigator"]), PASSWORD, kind, screening.pk, "")
    unlocked = signing.unlock_record(
        request_as(staff["investigator"]), PASSWORD, kind, screening.pk, "ECOG corrected"
    )
    assert [s.unlock_reason for s in unlocked] == ["ECOG corrected", "ECOG corrected"]
    assert not signing.is_locked(kind, screening.pk)
    assert AuditEntry.objects.filter(table="signing_signature", action="update").count() == 2
    with pytest.raises(InvalidInputError, match="carries no active signature"):
        signing.unlock_record(
            request_as(staff["investigator"]), PASSWORD, kind, screening.pk, "again"
        )


@pytest.mark.parametrize("reviewer", ["monitor", "physicist", "pharmacist"])
def test_a_review_is_not_a_lock_the_site_still_corrects_the_record(
    team: Staff, screening: Screening, request_as: RequestAs, reviewer: str
) -> None:
    kind, patient = "trial.screening", screening.patient
    review = signing.sign(request_as(team[reviewer]), PASSWORD, kind, screening.pk, "review")
    assert not signing.is_locked(kind, screening.pk)
    corrected = services.record_screening(
        team["nurse"],
        patient,
        eligible_screening(ecog=0),
        reason="ECOG re-assessed",
        expected_version=1,
    )
    assert corrected.version == 2
    # the review stands, and shows that the record changed since it was reviewed
    review.refresh_from_db()
    assert (review.active, review.locks) == (True, False)
    assert not signing.content_unchanged(review)
    # a signature whose meaning locks (here authorship) still blocks a correction
    signing.sign(request_as(team["nurse"]), PASSWORD, kind, screening.pk, "authorship")
    with pytest.raises(signing.RecordLockedError, match=r"signed \(authorship\)"):
        services.record_screening(
            team["nurse"], patient, eligible_screening(ecog=1), reason="again", expected_version=2
        )

"""Allocation concealment: of the randomization list, site staff read what a patient's
allocation is (the arm, the list's SHA-256 fingerprint, the stratum) and nothing of the list's
structure; the list stays with the unblinded statistician.

A slot's block, the block's size, its sequence and its row id (ids follow the list's order)
place it in the list: whoever knows them and the arms allocated so far in the block knows the
arms left in it, and so the next allocations (ICH E9, 2.3; CONSORT 2010, item 9). None of
them reaches anyone but the statistician:

- the audit entry of a randomization records the allocation (`allocation`) without them;
- `readable` is what every reader of the audit trail (the API, the audit page, the patient's
  audit CSV, the exports) shows a user: the entries whole to the statistician; to anyone else
  without a slot's place in the list (entries written before the randomization stopped
  recording it stay as written: the trail is append-only), and a signature of a slot without
  the slot's id and content hash (the hash of a row whose other values are known gives away
  its few unknown small numbers to a quick search);
- `hides_signed_record` does the same for the signatures shown on the patient page, and
  `SLOT_IDENTITY` names the columns the exports leave out of a taken slot.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from startrt.web.trial import audit
from startrt.web.trial.models import AuditEntry, Membership, Role, Slot

SLOT_IDENTITY = frozenset({"id", "sequence", "block", "block_size"})
"""What places a slot in its list: its row id, sequence, block and block size."""
SIGNED_SLOT = frozenset({"record_id", "content_sha256"})
"""What a signature of a slot tells of the slot: its row id and the hash of its content."""
SLOT_TABLE = Slot._meta.db_table
SLOT_KIND = Slot._meta.label_lower  # how a signature names the slot it signs


def sees_the_list(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` is the unblinded statistician, the one role that reads the list."""
    return Membership.objects.filter(user_id=user.pk, role=Role.STATISTICIAN).exists()


def allocation(slot: Slot) -> dict[str, Any]:
    """What the audit trail records of a slot at randomization: the patient, the list and its
    SHA-256 fingerprint, the stratum, the arms, when and by whom; never its place in the list."""
    return {**_without(audit.snapshot(slot), SLOT_IDENTITY), "list_sha256": slot.listing.sha256}


def readable(
    entries: Iterable[AuditEntry], user: AbstractBaseUser | AnonymousUser
) -> Iterator[AuditEntry]:
    """`entries` as `user` may read them: whole for the statistician; for anyone else without
    a slot's place in the list (an entry so changed is a copy, never saved)."""
    if sees_the_list(user):
        yield from entries
        return
    for entry in entries:
        yield _concealed(entry)


def hides_signed_record(kind: str, user_sees_the_list: bool) -> bool:
    """Whether a signature of a `kind` record is shown without the record's id and content
    hash: a signature of a slot, to anyone but the statistician."""
    return kind == SLOT_KIND and not user_sees_the_list


def _concealed(entry: AuditEntry) -> AuditEntry:
    if entry.table == SLOT_TABLE:
        hidden, row_id = SLOT_IDENTITY, ""
    elif _signs_a_slot(entry.old) or _signs_a_slot(entry.new):
        hidden, row_id = SIGNED_SLOT, entry.row_id
    else:
        return entry
    shown = copy.copy(entry)
    shown.row_id = row_id
    shown.old = None if entry.old is None else _without(entry.old, hidden)
    shown.new = None if entry.new is None else _without(entry.new, hidden)
    return shown


def _signs_a_slot(values: dict[str, Any] | None) -> bool:
    return values is not None and values.get("kind") == SLOT_KIND and "record_id" in values


def _without(values: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name not in hidden}

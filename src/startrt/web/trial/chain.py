"""Hash chains over the append-only tables (the audit trail, the signatures): tamper evidence
beyond the triggers, which a table owner can disable.

Each row stores `prev_hash`, the `row_hash` of the row before it in its table (by id; the first
row chains to `GENESIS`), and `row_hash` = HMAC-SHA256 over the canonical JSON (sorted keys, no
spaces) of the table name, `prev_hash` and the row's content fields (`Chain.fields`: what the
row says; not its id, so a reordering shows as a broken link, not as an edit). The HMAC key is
derived from the server's SECRET_KEY (`key`): someone with only database access cannot compute a
valid hash, so an edited or forged row shows, and removing or reordering rows breaks the links.
A new SECRET_KEY needs the chains recomputed (the migration's backfill) or verification fails.

Rows are appended by `append` only, in the transaction of the change, under a lock that
serialises writers of one table so the chain cannot fork: a transaction-scoped advisory lock on
PostgreSQL (it needs no UPDATE privilege and also covers the empty table), SQLite's write lock
otherwise. `verify` recomputes a chain and names every problem.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections, models, router, transaction

GENESIS = "0" * 64
KEY_PURPOSE = b"startrt.hash-chain.v1"


@dataclass(frozen=True)
class Chain:
    """One hash-chained table: its name and the columns (attnames) each hash covers."""

    table: str
    fields: tuple[str, ...]


AUDIT = Chain(
    "trial_auditentry",
    (
        "at",
        "user_id_at_time",
        "username",
        "action",
        "table",
        "row_id",
        "patient_trial_id",
        "old",
        "new",
        "reason",
    ),
)
# What is signed, by whom and when; not the unlock (set once later, checked against the audit
# trail by `startrt audit verify`).
SIGNATURES = Chain(
    "signing_signature",
    (
        "patient_id",
        "kind",
        "record_id",
        "meaning",
        "content_sha256",
        "signer_id",
        "signer_username",
        "signer_full_name",
        "signed_at",
    ),
)
CHAINS = {chain.table: chain for chain in (AUDIT, SIGNATURES)}
M = TypeVar("M", bound=models.Model)


def key(secret: str | None = None) -> bytes:
    """The HMAC key of the chains: HMAC-SHA256(SECRET_KEY, KEY_PURPOSE)."""
    secret = settings.SECRET_KEY if secret is None else secret
    return hmac.new(secret.encode("utf-8"), KEY_PURPOSE, hashlib.sha256).digest()


def canonical(value: Any) -> Any:
    """`value` as the hash sees it, the same whether it was just written or read back from
    SQLite or PostgreSQL: datetimes in UTC ISO 8601, whole floats as integers (PostgreSQL's
    jsonb reads 1e16 back as an integer), containers recursively."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def row_hash(chain: Chain, prev_hash: str, content: Mapping[str, Any], secret: bytes) -> str:
    """The hash of a row with `content` (at least chain.fields) chained to `prev_hash`."""
    message = {
        "table": chain.table,
        "prev": prev_hash,
        "row": {name: canonical(content[name]) for name in chain.fields},
    }
    text = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def lock(chain: Chain, using: str) -> None:
    """Serialise the writers of `chain` until the transaction ends."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"startrt.chain.{chain.table}".encode()).digest()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
            )
    # SQLite: the change being audited already holds the database's one write lock.


def head(model: type[models.Model], using: str) -> str:
    """The row_hash of the table's last row, GENESIS when it is empty."""
    last = model._base_manager.using(using).order_by("-pk").values_list("row_hash", flat=True)
    return last.first() or GENESIS


def append(instance: M) -> M:
    """Insert `instance` (a new row of a chained table) chained to the table's last row."""
    meta = instance._meta
    chain = CHAINS[meta.db_table]
    using = router.db_for_write(type(instance), instance=instance)
    with transaction.atomic(using=using, savepoint=False):
        lock(chain, using)
        for field in meta.concrete_fields:  # auto_now_add timestamps, set now to be hashed
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
                setattr(instance, field.attname, field.pre_save(instance, add=True))
        prev = head(type(instance), using)
        content = {name: getattr(instance, name) for name in chain.fields}
        instance.prev_hash = prev  # type: ignore[attr-defined]
        instance.row_hash = row_hash(chain, prev, content, key())  # type: ignore[attr-defined]
        # raw: store the attributes as set (a plain save would take a new auto_now_add time)
        instance.save_base(using=using, raw=True, force_insert=True)
    return instance


@dataclass(frozen=True)
class Problem:
    """One break of a chain: the row (by id), what kind of tampering it shows, and why."""

    table: str
    row_id: int
    kind: str  # edited | inserted | deleted | reordered | unlock
    detail: str

    def __str__(self) -> str:
        return f"{self.table} #{self.row_id}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Row:
    id: int
    prev_hash: str
    row_hash: str
    content: Mapping[str, Any]


def verify(chain: Chain, rows: Iterable[Row], secret: bytes) -> list[Problem]:
    """Every problem of the chain `rows` (in id order); none when it is intact.

    - edited: the row's hash does not match its content, its links are intact (changed after it
      was written; a row appended at the head by someone copying the last link looks the same);
    - inserted: a row with an invalid hash outside the chain (the next row chains past it, or
      its own link is broken), or a copy of another row;
    - deleted: the row chains to a hash no row has (rows before it were removed);
    - reordered: the row chains to another row than the one before it by id.
    Rows removed from the head leave no trace here: compare the head with one recorded earlier.
    """
    ordered = list(rows)
    position = {row.row_hash: index for index, row in reversed(list(enumerate(ordered)))}
    problems: list[Problem] = []
    flagged: set[int] = set()

    def flag(index: int, kind: str, detail: str) -> None:
        flagged.add(index)
        problems.append(Problem(chain.table, ordered[index].id, kind, detail))

    expected = GENESIS
    expected_index = -1
    for index, row in enumerate(ordered):
        valid = hmac.compare_digest(
            row_hash(chain, row.prev_hash, row.content, secret), row.row_hash
        )
        if valid and position[row.row_hash] != index:
            flag(index, "inserted", f"a copy of #{ordered[position[row.row_hash]].id}")
            continue
        if not valid:
            after = ordered[index + 1] if index + 1 < len(ordered) else None
            if row.prev_hash != expected or (after is not None and after.prev_hash == expected):
                flag(index, "inserted", "its hash does not match and no row chains to it")
                continue
            detail = "its content does not match its hash: edited, or forged without the key"
            flag(index, "edited", detail)
            expected, expected_index = row.row_hash, index
            continue
        if row.prev_hash != expected:
            target = position.get(row.prev_hash)
            if target is None:
                before = "the first row" if expected_index < 0 else f"#{ordered[expected_index].id}"
                flag(index, "deleted", f"rows between {before} and it are missing")
            elif target > index:
                flag(index, "reordered", f"it chains to #{ordered[target].id}, a later row")
            elif not all(between in flagged for between in range(target + 1, index)):
                flag(index, "reordered", f"it chains to #{ordered[target].id}, an earlier row")
        expected, expected_index = row.row_hash, index
    return problems


def rows_of(model: type[models.Model], chain: Chain, using: str = "default") -> Iterable[Row]:
    """The rows of a chained table in id order, as `verify` reads them."""
    columns = ("pk", "prev_hash", "row_hash", *chain.fields)
    for values in model._base_manager.using(using).order_by("pk").values(*columns).iterator():
        yield Row(values["pk"], values["prev_hash"], values["row_hash"], values)


def backfill(model: type[models.Model], chain: Chain, secret: bytes, using: str) -> int:
    """Compute the chain of every row of `model` in id order (the migration adding the
    columns; the table's triggers must be lifted). Returns the number of rows."""
    prev = GENESIS
    count = 0
    columns = ("pk", *chain.fields)
    manager = model._base_manager.using(using)
    for values in list(manager.order_by("pk").values(*columns)):
        digest = row_hash(chain, prev, values, secret)
        manager.filter(pk=values["pk"]).update(prev_hash=prev, row_hash=digest)
        prev = digest
        count += 1
    return count


def unlock_problems(using: str = "default") -> list[Problem]:
    """Signature unlocks that the (hash-chained) audit trail does not record as made, and
    recorded unlocks the signature no longer shows. An unlock is set once in the signature row
    (the triggers allow that one UPDATE, to anyone with the app's database access), outside the
    signature's hash: the audit entry written with it is its evidence."""
    from django.apps import apps
    from django.core.serializers.json import DjangoJSONEncoder

    signatures = apps.get_model("signing", "Signature")._base_manager.using(using)
    entries = apps.get_model("trial", "AuditEntry")._base_manager.using(using)
    recorded: dict[str, dict[str, Any]] = {}
    for row_id, new in entries.filter(table=SIGNATURES.table, action="update").values_list(
        "row_id", "new"
    ):
        if isinstance(new, dict) and new.get("unlocked_at"):
            recorded[row_id] = new
    encoder = DjangoJSONEncoder()
    problems = []
    columns = ("pk", "unlocked_at", "unlocked_by", "unlock_reason")
    for values in signatures.order_by("pk").values(*columns).iterator():
        entry = recorded.pop(str(values["pk"]), None)
        unlocked_at = values["unlocked_at"]
        if unlocked_at is None and entry is None:
            continue
        if entry is None:
            detail = "unlocked, but the audit trail records no unlock"
        elif unlocked_at is None:
            detail = "the audit trail records an unlock the signature no longer shows"
        elif (
            entry.get("unlocked_at") != encoder.default(unlocked_at)
            or entry.get("unlocked_by") != values["unlocked_by"]
            or entry.get("unlock_reason") != values["unlock_reason"]
        ):
            detail = "its unlock differs from the one the audit trail records"
        else:
            continue
        problems.append(Problem(SIGNATURES.table, values["pk"], "unlock", detail))
    for row_id in recorded:
        detail = "the audit trail records an unlock of this signature, which is missing"
        problems.append(Problem(SIGNATURES.table, int(row_id), "unlock", detail))
    return problems


@dataclass(frozen=True)
class Report:
    """What `verify_database` found: per table the rows, the head (id and hash), problems."""

    rows: dict[str, int]
    heads: dict[str, tuple[int, str] | None]
    problems: list[Problem]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_database(anchors: Iterable[tuple[str, int, str]] = (), using: str = "default") -> Report:
    """Verify both chains and the signatures' unlocks; `anchors` are heads (table, id, hash)
    recorded earlier, which must still be in the chain with that hash (rows removed from the
    head show only so)."""
    from django.apps import apps

    secret = key()
    rows: dict[str, int] = {}
    heads: dict[str, tuple[int, str] | None] = {}
    problems: list[Problem] = []
    by_id: dict[str, dict[int, str]] = {}
    for label, chain in (("trial.AuditEntry", AUDIT), ("signing.Signature", SIGNATURES)):
        ordered = list(rows_of(apps.get_model(label), chain, using))
        problems += verify(chain, ordered, secret)
        rows[chain.table] = len(ordered)
        heads[chain.table] = (ordered[-1].id, ordered[-1].row_hash) if ordered else None
        by_id[chain.table] = {row.id: row.row_hash for row in ordered}
    problems += unlock_problems(using)
    for table, row_id, digest in anchors:
        stored = by_id[table].get(row_id)
        if stored is None:
            detail = "the head recorded earlier is gone: deleted"
            problems.append(Problem(table, row_id, "deleted", detail))
        elif stored != digest:
            detail = f"its hash is not the {digest[:12]}… recorded earlier"
            problems.append(Problem(table, row_id, "edited", detail))
    return Report(rows, heads, problems)

"""CSV per table: one UTF-8 file per model of the trial apps (header = field names, foreign
keys as ids, JSON fields as JSON text, the patient's trial_id on patient-linked tables) and
the audit trail as audit_trail.csv. Text a spreadsheet would read as a formula is neutralised
and every field quoted (`startrt.spreadsheet_safe`)."""

from __future__ import annotations

import csv
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser

from startrt.spreadsheet_safe import QUOTING, safe_dict
from startrt.web.exports.tables import (
    Table,
    audit_table,
    consistent_snapshot,
    require_export_role,
    rows,
    trial_tables,
)


def export_csv(user: AbstractBaseUser, out_dir: Path) -> list[Path]:
    """Write one CSV per table and audit_trail.csv into `out_dir`; return their paths."""
    require_export_role(user)
    out_dir.mkdir(parents=True, exist_ok=True)
    with consistent_snapshot():
        return [_write(table, user, out_dir) for table in (*trial_tables(user), audit_table())]


def _write(table: Table, user: AbstractBaseUser, out_dir: Path) -> Path:
    path = out_dir / f"{table.name}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=table.columns, quoting=QUOTING)
        writer.writeheader()
        writer.writerows(safe_dict(row) for row in rows(table, user))
    return path

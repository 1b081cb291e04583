"""`startrt export --out DIR [--format csv|odm] --user NAME`: the export as a named user (Django
must be set up first). The role check and the site restriction are those of the user."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model

from startrt.validation import InvalidInputError
from startrt.web.exports.csv_export import export_csv
from startrt.web.exports.odm_export import export_odm

FORMATS = ("csv", "odm")
ODM_FILE = "clinical_data_odm_1_3_2.xml"


def run_export(username: str, out_dir: Path, fmt: str = "csv") -> list[Path]:
    """Export as `username` into `out_dir` (created if missing); return the files written."""
    if fmt not in FORMATS:
        raise InvalidInputError("format", fmt, "must be csv or odm")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInputError("user", username, "no such user")
    if fmt == "csv":
        return export_csv(user, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ODM_FILE
    path.write_bytes(export_odm(user))
    return [path]

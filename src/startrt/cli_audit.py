"""`startrt audit verify`: recompute the hash chains of the audit trail and the signatures
(`web/trial/chain.py`) and report every edited, deleted, inserted or reordered row, and every
signature unlock the audit trail does not record. Exit 0 when intact, 1 when not, 2 on bad
input. Run it with the server's SECRET_KEY (STARTRT_SECRET_KEY or the data folder's key file):
the hashes are HMACs keyed by it."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from startrt.cli_support import JsonFlag, fail, refuses_bad_input
from startrt.validation import InvalidInputError

audit_app = typer.Typer(
    help="Tamper evidence of the audit trail and the signatures (hash chains).",
    no_args_is_help=True,
)
ANCHOR = re.compile(r"(?P<table>[a-z_]+):(?P<id>[0-9]+):(?P<hash>[0-9a-f]{64})")


def _anchors(texts: list[str]) -> list[tuple[str, int, str]]:
    from startrt.web.trial.chain import CHAINS

    anchors = []
    for text in texts:
        match = ANCHOR.fullmatch(text.strip())
        if match is None or match["table"] not in CHAINS:
            raise InvalidInputError(
                "--expect-head",
                text,
                f"must read TABLE:ID:HASH (TABLE one of {', '.join(CHAINS)}; HASH 64 hex "
                "digits), as `startrt audit verify` prints the head",
            )
        anchors.append((match["table"], int(match["id"]), match["hash"]))
    return anchors


@audit_app.command()
@refuses_bad_input
def verify(
    expect_head: Annotated[
        list[str] | None,
        typer.Option(
            help="A head printed by an earlier run (TABLE:ID:HASH; repeat): it must still be "
            "in the chain, unchanged. Record the heads outside the database."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the hash chains of the audit trail and the signatures; report every problem
    (exit 1) or OK (exit 0), and print each chain's head to record outside the database."""
    from startrt.cli_web import setup_django

    setup_django()
    from django.db import DatabaseError

    from startrt.output import to_json
    from startrt.web.trial.chain import verify_database

    anchors = _anchors(expect_head or [])
    try:
        report = verify_database(anchors)
    except DatabaseError as error:
        message = f"the database cannot be read (migrated? `startrt manage migrate`): {error}"
        raise fail(message) from None
    heads = {
        table: None if head is None else f"{table}:{head[0]}:{head[1]}"
        for table, head in report.heads.items()
    }
    if as_json:
        problems = [
            {"table": p.table, "row_id": p.row_id, "kind": p.kind, "detail": p.detail}
            for p in report.problems
        ]
        result = {"intact": report.intact, "rows": report.rows, "heads": heads}
        typer.echo(to_json(result | {"problems": problems}))
    else:
        for table, count in report.rows.items():
            typer.echo(f"{table}: {count} rows, head {heads[table] or '(empty)'}")
        for problem in report.problems:
            typer.echo(f"PROBLEM {problem}")
        found = len(report.problems)
        typer.echo("audit verify: OK" if report.intact else f"audit verify: {found} problem(s)")
    if not report.intact:
        raise typer.Exit(code=1)

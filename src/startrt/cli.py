"""The `startrt` command line: one Typer app, every job a user runs is a command here.

Every command takes `--json` and then prints one JSON object on stdout; without it, tables.
A bad argument or input file exits with status 2 and a message naming it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from startrt.cli_audit import audit_app
from startrt.cli_dosimetry import dosimetry_app, phantom_app
from startrt.cli_report import report
from startrt.cli_simulate import simulate
from startrt.cli_support import (
    InputFile,
    JsonFlag,
    ProtocolPath,
    emit,
    protocol_from,
    read_json,
    refuses_bad_input,
)
from startrt.cli_web import export, manage, serve
from startrt.clinical.bsa import dubois_bsa_m2, mosteller_bsa_m2
from startrt.clinical.ctcae import LabTerm, grade_lab
from startrt.clinical.egfr import absolute_gfr_panel, egfr_panel
from startrt.clinical.recist import evaluate_series, parse_series
from startrt.clinical.sex import Sex
from startrt.output import key_value_table, plain, print_tables, rows_table, to_json
from startrt.validation import InvalidInputError

if TYPE_CHECKING:
    from startrt.protocol.randomization import StrataDesign

# The protocol layer (pydantic, NumPy) is imported inside the commands that need it, so that
# the calculators (egfr, bsa, ctcae, recist) start fast; tests/cli/test_cli_startup.py checks.

app = typer.Typer(
    name="startrt",
    help="START-01 dosimetry-guided PRRT trial: calculators, protocol rules, planning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
@refuses_bad_input
def egfr(
    sex: Annotated[Sex, typer.Option(help="Sex as used by the equations.")],
    age: Annotated[float, typer.Option(help="Age in years.")],
    creatinine_umol_l: Annotated[
        float | None, typer.Option(help="Plasma creatinine, umol/L.")
    ] = None,
    cystatin_c_mg_l: Annotated[float | None, typer.Option(help="Cystatin C, mg/L (IFCC).")] = None,
    weight_kg: Annotated[
        float | None, typer.Option(help="Weight, kg (Cockcroft-Gault; BSA with --height-cm).")
    ] = None,
    height_cm: Annotated[
        float | None, typer.Option(help="Height, cm: absolute GFR (ml/min) at the DuBois BSA.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """eGFR by LMR, CAPA, their mean, CKD-EPI 2021 (ml/min/1.73 m2); Cockcroft-Gault (ml/min).

    With --height-cm and --weight-kg also each estimate as absolute GFR (ml/min) at the DuBois
    BSA."""
    panel = egfr_panel(sex, age, creatinine_umol_l, cystatin_c_mg_l, weight_kg)
    result = plain(panel)
    title = "eGFR (ml/min/1.73 m2; Cockcroft-Gault ml/min)"
    if height_cm is not None:
        if weight_kg is None:
            raise InvalidInputError("--weight-kg", None, "required with --height-cm (BSA)")
        result |= plain(absolute_gfr_panel(panel, dubois_bsa_m2(height_cm, weight_kg)))
        title = "eGFR (ml/min/1.73 m2; *_ml_min: absolute at the DuBois BSA)"
    emit(as_json, result, title)


@app.command()
@refuses_bad_input
def bsa(
    height_cm: Annotated[float, typer.Option(help="Height, cm.")],
    weight_kg: Annotated[float, typer.Option(help="Weight, kg.")],
    as_json: JsonFlag = False,
) -> None:
    """Body surface area (m2) by DuBois and by Mosteller."""
    result = {
        "dubois": dubois_bsa_m2(height_cm, weight_kg),
        "mosteller": mosteller_bsa_m2(height_cm, weight_kg),
    }
    emit(as_json, result, "Body surface area (m2)")


@app.command()
@refuses_bad_input
def capecitabine(
    height_cm: Annotated[float, typer.Option(help="Height, cm.")],
    weight_kg: Annotated[float, typer.Option(help="Weight, kg.")],
    crcl_ml_min: Annotated[
        float | None, typer.Option(help="Cockcroft-Gault creatinine clearance, ml/min.")
    ] = None,
    dose_level_percent: Annotated[int, typer.Option(help="100, 75 or 50 after toxicity.")] = 100,
    arm: Annotated[str, typer.Option(help="Treatment arm (one that gives capecitabine).")] = (
        "CAP-dTOC"
    ),
    cycle: Annotated[int, typer.Option(help="The PRRT cycle the course goes with.")] = 1,
    protocol_path: ProtocolPath = None,
    as_json: JsonFlag = False,
) -> None:
    """Capecitabine course of a PRRT cycle: the dose per administration (b.i.d.) in whole
    150 / 500 mg tablets, renal adjustment and contraindications (the protocol's decision)."""
    from startrt.protocol.capecitabine import capecitabine_decision

    decision = capecitabine_decision(
        arm,
        cycle,
        height_cm=height_cm,
        weight_kg=weight_kg,
        crcl_ml_min=crcl_ml_min,
        dose_level_percent=dose_level_percent,
        protocol=protocol_from(protocol_path),
    )
    emit(as_json, decision, f"Capecitabine, cycle {cycle} (mg per administration)")


@app.command()
@refuses_bad_input
def ctcae(
    term: Annotated[LabTerm, typer.Argument(help="Laboratory term.")],
    value: Annotated[float, typer.Argument(help="Result in SI units (see the term).")],
    lln: Annotated[float | None, typer.Option(help="The lab's lower limit of normal.")] = None,
    uln: Annotated[float | None, typer.Option(help="The lab's upper limit of normal.")] = None,
    baseline: Annotated[float | None, typer.Option(help="The patient's baseline value.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """CTCAE v5.0 grade of a laboratory result, using the lab's own LLN / ULN."""
    grade = grade_lab(term, value, lln=lln, uln=uln, baseline=baseline)
    emit(as_json, grade, f"CTCAE v5.0: {term.value}")


@app.command()
@refuses_bad_input
def recist(
    file: InputFile,
    sd_min_interval_days: Annotated[
        int, typer.Option(help="Minimum days from baseline for SD to count as best response.")
    ] = 42,
    as_json: JsonFlag = False,
) -> None:
    """RECIST 1.1 response per assessment and the best overall response of a series."""
    response = evaluate_series(
        parse_series(read_json(file)), sd_min_interval_days=sd_min_interval_days
    )
    if as_json:
        typer.echo(to_json(response))
        return
    columns = ["date", "sum_mm", "nadir_mm", "change_from_nadir_pct", "target", "non_target"]
    columns += ["new_lesions", "overall"]
    rows = plain(response.assessments)
    print_tables(
        rows_table("RECIST 1.1", rows, columns),
        key_value_table("Best overall response", {"best_overall": response.best_overall}),
    )


@app.command()
@refuses_bad_input
def eligibility(
    file: InputFile, protocol_path: ProtocolPath = None, as_json: JsonFlag = False
) -> None:
    """Every eligibility criterion evaluated from a screening record (JSON)."""
    from startrt.protocol.eligibility import assess_eligibility
    from startrt.protocol.records import parse_record
    from startrt.protocol.screening import ScreeningRecord

    protocol = protocol_from(protocol_path)
    record = parse_record(ScreeningRecord, read_json(file), "screening record")
    decision = assess_eligibility(record, protocol)
    if as_json:
        typer.echo(to_json(decision))
        return
    columns = ["kind", "id", "text", "status", "value", "threshold"]
    summary = {"eligible": decision.eligible, "protocol": decision.protocol}
    summary["warnings"] = list(decision.warnings)
    print_tables(
        rows_table("Eligibility criteria", plain(decision.criteria), columns),
        key_value_table("Eligibility", summary),
    )


@app.command("plan-cycle")
@refuses_bad_input
def plan_cycle(file: InputFile, as_json: JsonFlag = False) -> None:
    """The next cycle (full / reduced / stop) from the cycles given so far (JSON), with the
    probability that the true and the measured cumulative kidney dose exceed the limit."""
    from startrt.protocol.cycle_planning import PlanningInput, plan_next_cycle
    from startrt.protocol.records import parse_record

    request = parse_record(PlanningInput, read_json(file), "plan-cycle input")
    protocol = protocol_from(None if request.protocol is None else file.parent / request.protocol)
    plan = plan_next_cycle(request.arm, request.cycles, protocol)
    emit(as_json, plan, f"Cycle {plan.next_cycle} plan")


def _parse_strata(texts: list[str]) -> StrataDesign:
    from startrt.protocol.randomization import StrataDesign

    factors: dict[str, tuple[str, ...]] = {}
    for text in texts:
        name, separator, levels = text.partition("=")
        if not separator or not levels:
            raise InvalidInputError("--strata", text, "must read FACTOR=LEVEL,LEVEL,...")
        factors[name] = tuple(level.strip() for level in levels.split(","))
    return StrataDesign(factors)


@app.command("randomization-list")
@refuses_bad_input
def randomization_list(
    seed: Annotated[int, typer.Option(help="Seed; keep it secret until the trial ends.")],
    n: Annotated[int, typer.Option("--n", help="Slots per stratum (whole blocks, >= N).")],
    strata: Annotated[
        list[str] | None,
        typer.Option(help="FACTOR=LEVEL,LEVEL (repeat); default: the protocol's strata."),
    ] = None,
    out: Annotated[Path, typer.Option(help="CSV file to write.")] = Path("randomization-list.csv"),
    protocol_path: ProtocolPath = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a stratified permuted-block list as CSV and print its SHA-256 fingerprint."""
    from startrt.protocol.randomization import generate_block_list
    from startrt.protocol.stratification import protocol_strata

    protocol = protocol_from(protocol_path)
    settings = protocol.randomization
    design = _parse_strata(strata) if strata else protocol_strata(protocol)
    listing = generate_block_list(
        seed=seed,
        n_per_stratum=n,
        strata=design,
        arms=settings.arms,
        ratio=settings.ratio,
        block_sizes=settings.block_sizes,
    )
    try:
        out.write_text(listing.to_csv(), encoding="utf-8")
    except OSError as error:
        raise InvalidInputError("--out", str(out), f"cannot be written: {error.strerror}") from None
    balance = listing.balance()
    result = {
        "sha256": listing.sha256,
        "file": str(out),
        "slots": len(listing.entries),
        "strata": len(design.strata()),
        "arms": list(settings.arms),
        "ratio": list(settings.ratio),
        "block_sizes": list(settings.block_sizes),
        "overall": plain(balance.overall.counts),
        "all_blocks_balanced": all(block.balanced for block in balance.blocks),
    }
    emit(as_json, result, "Randomization list")


@app.command()
@refuses_bad_input
def schedule(
    arm: Annotated[
        str, typer.Option(help="Treatment arm id of the protocol (`startrt protocol` lists them).")
    ],
    first_cycle_date: Annotated[str, typer.Option(help="Planned date of cycle 1 (YYYY-MM-DD).")],
    cycles: Annotated[int, typer.Option(help="Number of cycles to plan.")] = 4,
    administered: Annotated[
        list[str] | None, typer.Option(help="N=YYYY-MM-DD for a given cycle (repeat).")
    ] = None,
    protocol_path: ProtocolPath = None,
    as_json: JsonFlag = False,
) -> None:
    """The visit calendar with windows, recomputed from the cycles actually given."""
    from startrt.protocol.schedule import build_schedule

    protocol = protocol_from(protocol_path)
    given: dict[int, date] = {}
    for item in administered or []:
        number, _, day = item.partition("=")
        try:
            given[int(number)] = date.fromisoformat(day)
        except ValueError:
            raise InvalidInputError("--administered", item, "must read N=YYYY-MM-DD") from None
    try:
        first = date.fromisoformat(first_cycle_date)
    except ValueError:
        raise InvalidInputError(
            "--first-cycle-date", first_cycle_date, "must be YYYY-MM-DD"
        ) from None
    calendar = build_schedule(
        protocol.schedule,
        first_cycle_date=first,
        planned_cycles=cycles,
        administered=given,
        with_capecitabine=protocol.arm(arm).capecitabine,
    )
    visits = [plain(visit) for visit in calendar.visits]
    if as_json:
        typer.echo(to_json({"protocol": protocol.label, "arm": arm, "visits": visits}))
        return
    columns = ["visit_date", "label", "earliest", "latest", "done"]
    for row, visit in zip(visits, calendar.visits, strict=True):
        row["visit_date"] = visit.visit_date
    print_tables(rows_table(f"Schedule ({protocol.label}, {arm})", visits, columns))


@app.command("protocol")
@refuses_bad_input
def protocol_command(
    file: Annotated[Path | None, typer.Argument(help="Protocol TOML to check.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate a protocol file (default: the shipped version in force today) and show its
    effective date and key parameters."""
    protocol = protocol_from(file)
    summary = {
        "protocol": protocol.label,
        "effective_date": protocol.effective_date,
        "arms": [arm.id for arm in protocol.arms],
        "activity_per_cycle_gbq": protocol.treatment.activity_per_cycle_gbq,
        "renal_limit": protocol.renal_limit,
        "marrow_limit": protocol.marrow_limit,
        "interval_weeks": protocol.schedule.interval_weeks,
        "window_weeks": protocol.schedule.window_weeks,
        "assessment_interval_weeks": protocol.assessments.interval_weeks,
        "eligibility_criteria": len(protocol.eligibility.inclusion)
        + len(protocol.eligibility.exclusion),
    }
    emit(as_json, summary, "Protocol")


app.command()(serve)
app.command()(export)
app.command()(report)
app.command()(simulate)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(manage)
app.add_typer(dosimetry_app, name="dosimetry")
app.add_typer(phantom_app, name="phantom")
app.add_typer(audit_app, name="audit")


def main() -> None:
    """Entry point of the `startrt` script."""
    app()


if __name__ == "__main__":
    main()

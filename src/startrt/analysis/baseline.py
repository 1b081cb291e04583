"""Table 1: the baseline characteristics of the randomized patients, as recorded at screening,
by randomized arm and by treatment arm, with every randomized patient in "all arms".

Categories are counted n (%) over the group's randomized patients; numbers are summarized by
median (IQR, Hyndman-Fan type 7 quartiles) and range over the patients with a value. A patient
without a value is counted in a row "not recorded" (shown wherever a randomized patient lacks
the value), never dropped. The WHO grade is the dataset's (`clinical.net_grade`: the trial
database's from Ki-67), the body surface area from height and weight by the protocol's
capecitabine formula, and the
stratification factors from the protocol's strata: the site (`patients.site`) and the FDG-PET
status of the stratum stored with the allocation (CONSORT 2010 item 15: Moher et al., BMJ
2010;340:c869).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from startrt import fields
from startrt.analysis import report as trial_report
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.efficacy import fdg_level
from startrt.analysis.groups import arm_ids, by_group, describe, randomized
from startrt.analysis.pooled import POOLED
from startrt.clinical.net_grade import NetGrade
from startrt.clinical.sex import Sex
from startrt.fields import choice_label
from startrt.protocol.capecitabine import BSA_FORMULAS
from startrt.protocol.definition import Protocol
from startrt.protocol.stratification import FDG_LEVELS, protocol_strata
from startrt.protocol.vocabulary import PrimarySite

NOT_RECORDED = "not recorded"
VALUES = "values"
"""The level of a number's row in the summary: its median, quartiles and range."""
GROUPINGS = {"arm": "by randomized arm", "treatment_arm": "by treatment arm"}
YES_NO = ("yes", "no")
SUMMARY_COLUMNS = (
    *("grouping", "group", "characteristic", "patients", "level", "n", "percent"),
    *("median", "q1", "q3", "min", "max"),
)
GRADES: tuple[str, ...] = tuple(str(grade) for grade in NetGrade)
Values = Callable[[pd.DataFrame, Protocol], pd.Series]


@dataclass(frozen=True)
class Characteristic:
    """A row block of Table 1: each patient's value (a category's words, or a number when
    `decimals` is set; None when not recorded) and the categories in display order."""

    label: str
    values: Values
    order: Callable[[Protocol], tuple[str, ...]] = lambda _: ()
    decimals: int | None = None


def _column(name: str) -> Values:
    return lambda patients, _: patients[name].astype("float64")


def _mapped(name: str, words: Callable[[Any], str]) -> Values:
    return lambda patients, _: patients[name].map(lambda v: None if pd.isna(v) else words(v))


def _heading(column: str) -> str:
    """The column's label with its unit, as every page and table shows it (`startrt.fields`)."""
    return fields.meta(column).heading


def _yes_no_order(_: Protocol) -> tuple[str, ...]:
    return YES_NO


def _yes_no(value: Any) -> str:
    return YES_NO[0] if value else YES_NO[1]


def _bsa_m2(patients: pd.DataFrame, protocol: Protocol) -> pd.Series:
    formula = BSA_FORMULAS[protocol.capecitabine.bsa_formula]
    return pd.Series(
        [
            None if pd.isna(height) or pd.isna(weight) else formula(height, weight)
            for height, weight in zip(patients["height_cm"], patients["weight_kg"], strict=True)
        ],
        index=patients.index,
        dtype="float64",
    )


def _strata(protocol: Protocol) -> tuple[Characteristic, ...]:
    """One row block per stratification factor of the protocol (site, FDG-PET status)."""
    factors = {
        "site": Characteristic(
            "Stratification: site", lambda rows, _: rows["site"], lambda p: p.sites
        ),
        "fdg": Characteristic(
            "Stratification: FDG-PET status",
            lambda rows, _: rows["stratum"].map(fdg_level),
            lambda _: FDG_LEVELS,
        ),
    }
    return tuple(factors[factor] for factor in protocol_strata(protocol).factors)


CHARACTERISTICS: tuple[Characteristic, ...] = (
    Characteristic(_heading("age_years"), _column("age_years"), decimals=1),
    Characteristic(
        _heading("sex"),
        _mapped("sex", choice_label),
        lambda _: tuple(choice_label(s) for s in Sex),
    ),
    Characteristic(
        _heading("ecog"),
        _mapped("ecog", lambda v: str(int(v))),
        lambda _: tuple(map(str, range(6))),
    ),
    Characteristic(
        _heading("primary_site"),
        _mapped("primary_site", lambda v: PrimarySite(v).label),
        lambda _: tuple(site.label for site in PrimarySite),
    ),
    Characteristic(_heading("who_grade"), _mapped("who_grade", str), lambda _: GRADES),
    Characteristic(_heading("ki67_percent"), _column("ki67_percent"), decimals=1),
    Characteristic(
        _heading("krenning_score"),
        _mapped("krenning_score", lambda v: str(int(v))),
        lambda _: tuple(map(str, range(5))),
    ),
    Characteristic(
        "FDG-PET",
        _mapped("fdg_pet_positive", lambda v: FDG_LEVELS[int(bool(v))]),
        lambda _: FDG_LEVELS,
    ),
    Characteristic(_heading("gfr_ml_min_173"), _column("gfr_ml_min_173"), decimals=0),
    Characteristic("Body surface area (m\u00b2)", _bsa_m2, decimals=2),
    Characteristic(
        _heading("prior_non_ssa_therapy"), _mapped("prior_non_ssa_therapy", _yes_no), _yes_no_order
    ),
    Characteristic(_heading("prior_prrt"), _mapped("prior_prrt", _yes_no), _yes_no_order),
)


def baseline_patients(dataset: TrialDataset) -> pd.DataFrame:
    """The randomized patients with their site and baseline record (empty when none)."""
    sites = dataset.patients[["trial_id", "site"]]
    chosen = randomized(dataset).merge(sites, on="trial_id", how="left")
    return chosen.merge(dataset.baseline, on="trial_id", how="left")


def baseline_summary(dataset: TrialDataset, protocol: Protocol) -> pd.DataFrame:
    """Per grouping (arm, treatment_arm), group (the grouping's arms, then `POOLED`: every
    randomized patient), characteristic and level: patients (the group's randomized patients),
    n and percent for a category or "not recorded"; for a number (level `VALUES`) n with a
    value and its median, q1, q3, min and max."""
    patients = baseline_patients(dataset)
    rows: list[dict[str, Any]] = []
    for characteristic in (*CHARACTERISTICS, *_strata(protocol)):
        values = characteristic.values(patients, protocol)
        levels = _levels(characteristic, values, protocol)
        for grouping, group, members in _groups(patients, protocol):
            chosen = values[members]
            head: dict[str, Any] = {"grouping": grouping, "group": group}
            head |= {"characteristic": characteristic.label, "patients": len(chosen)}
            for level in levels:
                rows.append(head | {"level": level} | _count(chosen, level, characteristic))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _levels(characteristic: Characteristic, values: pd.Series, protocol: Protocol) -> list[str]:
    """The categories any randomized patient has, in order (`VALUES` for a number some
    randomized patient has), then "not recorded" when a randomized patient has no value."""
    if characteristic.decimals is not None:
        levels = [VALUES] if values.notna().any() else []
    else:
        seen = set(values.dropna())
        levels = [level for level in characteristic.order(protocol) if level in seen]
    return levels + ([NOT_RECORDED] if values.isna().any() else [])


def _groups(patients: pd.DataFrame, protocol: Protocol) -> Iterator[tuple[str, str, pd.Series]]:
    """(grouping, group, its patients as a mask) for each arm of each grouping, then all."""
    for grouping in GROUPINGS:
        for group in arm_ids(protocol, grouping):
            yield grouping, group, patients[grouping] == group
        yield grouping, POOLED, pd.Series(True, index=patients.index)


def _count(values: pd.Series, level: str, characteristic: Characteristic) -> dict[str, Any]:
    if level == VALUES:
        stats = describe(values)
        return {"n": stats["n"]} | {k: stats[k] for k in ("median", "q1", "q3", "min", "max")}
    n = int(values.isna().sum() if level == NOT_RECORDED else (values == level).sum())
    return {"n": n, "percent": 100.0 * n / len(values) if len(values) else None}


def baseline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """`baseline_summary` rows of one grouping as Table 1 shows them: a row per category
    (n (%)) or two per number (median (IQR), range), a column per group headed with its
    number of randomized patients."""
    decimals = {c.label: c.decimals for c in CHARACTERISTICS}
    lines = [
        row | {"baseline_characteristic": row["characteristic"], "level": level, "text": text}
        for row in summary.to_dict("records")
        for level, text in _cells(row, decimals.get(str(row["characteristic"])))
    ]
    keys = ("baseline_characteristic", "level")
    return by_group(pd.DataFrame(lines), keys, lambda row: row["text"], "patients")


def _cells(row: Mapping[Hashable, Any], decimals: int | None) -> list[tuple[str, str]]:
    if row["level"] != VALUES:
        percent = "-" if pd.isna(row["percent"]) else f"{row['percent']:.1f} %"
        return [(row["level"], f"{row['n']} ({percent})")]
    if not row["n"]:
        return [("median (IQR)", "-"), ("range", "-")]

    def text(value: float) -> str:
        return f"{value:.{decimals or 0}f}"

    return [
        ("median (IQR)", f"{text(row['median'])} ({text(row['q1'])}\u2013{text(row['q3'])})"),
        ("range", f"{text(row['min'])}\u2013{text(row['max'])}"),
    ]


def report_part(
    view: trial_report.ReportView,
) -> Iterator[trial_report.ReportTable | trial_report.ReportFigure]:
    """Table 1 by randomized arm and by treatment arm (the open report: all arms pooled)."""
    summary = baseline_summary(view.dataset, view.protocol)
    for grouping, by in GROUPINGS.items():
        if view.pooled and grouping != "arm":
            continue
        rows = view.table(summary[summary["grouping"] == grouping])
        yield trial_report.ReportTable(
            f"baseline_{grouping}",
            trial_report.Section.BASELINE,
            "Baseline characteristics of the randomized patients, "
            + ("all arms pooled" if view.pooled else by),
            baseline_table(rows),
            "n (%) of the group's randomized patients; numbers as median (IQR) and range over "
            "the patients with a value. WHO grade as the dataset holds it (the trial database "
            "grades the Ki-67 index: G1 < 3 %, G2 3-20 %, G3 > 20 %); "
            "body surface area by the protocol's capecitabine formula.",
            keys=2,  # characteristic and level name a row
        )

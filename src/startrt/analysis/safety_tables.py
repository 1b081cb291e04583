"""The adverse-event tables a data monitoring committee reads: reported adverse events by
System Organ Class (SOC) and term, the serious adverse events and the deaths.

Rules: the AE table counts treatment-emergent reported AEs of the safety population
(`safety.graded_events`), a patient once per term and once per SOC, at any grade and at grade
>= 3; the SOC is the term's in CTCAE v5.0 (`clinical.ctcae_terms`), a term that is not a CTCAE
v5.0 term goes under `NOT_CODED`. SOCs follow the CTCAE table's order, terms within a SOC the
patients with them (most first). The SAE and death listings cover every randomized patient from
randomization on (ICH E3, 12.3.1-12.3.2: deaths and other serious adverse events listed per
patient); they name patients with their arm, so the open report counts them only.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

import pandas as pd

from startrt.analysis import report as trial_report
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.figures import SOURCE_LABELS
from startrt.analysis.groups import (
    by_group,
    dataset_protocol,
    grouped,
    randomized,
    treated,
    with_groups,
)
from startrt.analysis.safety import ANY_TERM, graded_events
from startrt.clinical import ctcae_terms
from startrt.protocol.vocabulary import AdverseEventOutcome, Attribution

NOT_CODED = "Not coded (not a CTCAE v5.0 term)"
SEVERE_FROM_GRADE = 3
AE_SOURCE = "adverse_event"
SAE_COLUMNS = (
    *("trial_id", "arm", "treatment_arm", "term", "soc", "grade", "onset_on"),
    *("attribution_prrt", "attribution_capecitabine", "outcome"),
)
DEATH_COLUMNS = (
    *("trial_id", "arm", "treatment_arm", "died_on", "days_after_last_cycle"),
    *("cause", "related_to_treatment"),
)


def soc_of(term: str) -> str:
    """The term's CTCAE v5.0 System Organ Class; `NOT_CODED` for any other text."""
    try:
        return ctcae_terms.lookup(term).soc
    except ValueError:
        return NOT_CODED


def _soc_order(soc: str) -> int:
    socs = ctcae_terms.system_organ_classes()
    return socs.index(soc) if soc in socs else len(socs)


def adverse_events_by_soc(dataset: TrialDataset) -> pd.DataFrame:
    """Patients with a treatment-emergent reported AE per SOC (term `safety.ANY_TERM`) and
    per term beneath it, per group: soc, term, group, n_patients (the group's safety
    population), any_grade, grade_3_plus (module rules)."""
    population = treated(dataset)
    events = graded_events(dataset)
    events = events[events["source"] == AE_SOURCE]
    events = events.assign(soc=events["term"].map(soc_of))
    rows: list[dict[str, Any]] = []
    for soc in sorted(set(events["soc"]), key=_soc_order):
        in_soc = events[events["soc"] == soc]
        patients = in_soc.groupby("term")["trial_id"].nunique()
        terms = sorted(patients.index, key=lambda term: (-patients[term], term))
        for term in (ANY_TERM, *terms):
            chosen = in_soc if term == ANY_TERM else in_soc[in_soc["term"] == term]
            severe = chosen[chosen["grade"] >= SEVERE_FROM_GRADE]
            for group, members in grouped(population, dataset_protocol(dataset)):
                ids = set(members["trial_id"])
                rows.append(
                    {"soc": soc, "term": term, "group": group, "n_patients": len(ids)}
                    | {"any_grade": len(ids & set(chosen["trial_id"]))}
                    | {"grade_3_plus": len(ids & set(severe["trial_id"]))}
                )
    columns = ["soc", "term", "group", "n_patients", "any_grade", "grade_3_plus"]
    return pd.DataFrame(rows, columns=columns)


def serious_adverse_events(dataset: TrialDataset) -> pd.DataFrame:
    """Every serious AE of a randomized patient, by patient and onset (SAE_COLUMNS), the
    attributions and outcome as their vocabulary labels."""
    events = dataset.adverse_events
    events = with_groups(events[events["serious"].fillna(False).astype(bool)], randomized(dataset))
    frame = events.assign(
        soc=events["term"].map(soc_of),
        attribution_prrt=events["attribution_prrt"].map(_label(Attribution)),
        attribution_capecitabine=events["attribution_capecitabine"].map(_label(Attribution)),
        outcome=events["outcome"].map(_label(AdverseEventOutcome)),
    )
    frame = frame.sort_values(["trial_id", "onset_on"], kind="stable")
    return frame.loc[:, list(SAE_COLUMNS)].reset_index(drop=True)


def _label(vocabulary: type[Attribution] | type[AdverseEventOutcome]) -> Any:
    return lambda value: None if pd.isna(value) else vocabulary(value).label


def serious_by_soc(dataset: TrialDataset) -> pd.DataFrame:
    """Serious AEs of randomized patients per SOC and group: soc, group, n_patients (the
    group's randomized patients), events, patients (with at least one)."""
    events = serious_adverse_events(dataset)
    population = randomized(dataset)
    rows: list[dict[str, Any]] = []
    for soc in sorted(set(events["soc"]), key=_soc_order):
        in_soc = events[events["soc"] == soc]
        for group, members in grouped(population, dataset_protocol(dataset)):
            chosen = in_soc[in_soc["trial_id"].isin(members["trial_id"])]
            rows.append(
                {"soc": soc, "group": group, "n_patients": len(members)}
                | {"events": len(chosen), "patients": chosen["trial_id"].nunique()}
            )
    return pd.DataFrame(rows, columns=["soc", "group", "n_patients", "events", "patients"])


def deaths(dataset: TrialDataset) -> pd.DataFrame:
    """The deaths of randomized patients (DEATH_COLUMNS): days_after_last_cycle counts from
    the last cycle given on or before the death (None for a patient never treated)."""
    died = with_groups(dataset.deaths, randomized(dataset))
    cycles = dataset.cycles.merge(died[["trial_id", "died_on"]], on="trial_id")
    last = (
        cycles[cycles["administered_on"] <= cycles["died_on"]]
        .groupby("trial_id")["administered_on"]
        .max()
    )
    days = (died["died_on"] - died["trial_id"].map(last)).dt.days
    frame = died.assign(days_after_last_cycle=days.astype("Int64"))
    frame = frame.sort_values(["died_on", "trial_id"], kind="stable")
    return frame.loc[:, list(DEATH_COLUMNS)].reset_index(drop=True)


def death_counts(dataset: TrialDataset) -> pd.DataFrame:
    """Deaths of randomized patients in total: deaths, related_deaths (assessed as related to
    treatment), randomized (patients)."""
    listed = deaths(dataset)
    related = int(listed["related_to_treatment"].fillna(False).astype(bool).sum())
    return pd.DataFrame(
        {
            "randomized_patients": [len(randomized(dataset))],
            "deaths": [len(listed)],
            "related_deaths": [related],
        }
    )


def _any_and_severe(row: dict[Hashable, Any]) -> str:
    return f"{row['any_grade']} / {row['grade_3_plus']}"


def report_part(
    view: trial_report.ReportView,
) -> Iterator[trial_report.ReportTable | trial_report.ReportFigure]:
    """The AE-by-SOC table and, by report: the SAE and death listings (closed) or their
    counts (open), in the report's safety section."""
    section, dataset = trial_report.Section.SAFETY, view.dataset
    reported = SOURCE_LABELS[AE_SOURCE]
    yield trial_report.ReportTable(
        "safety_ae_by_soc",
        section,
        f"Patients with a treatment-emergent {reported} by system organ class and term",
        by_group(view.table(adverse_events_by_soc(dataset)), ("soc", "term"), _any_and_severe),
        f"A cell: patients with the term at any grade / at grade {SEVERE_FROM_GRADE} or above; "
        f"a patient counts once per term and per SOC (rows '{ANY_TERM}'). Reported adverse "
        "events only (laboratory toxicity: the worst-grade table). SOC from CTCAE v5.0; "
        f"a term outside it under '{NOT_CODED}'.",
        keys=2,
    )
    yield trial_report.ReportTable(
        "safety_sae_by_soc",
        section,
        "Serious adverse events by system organ class",
        view.table(serious_by_soc(dataset)),
        "Every serious adverse event of a randomized patient from randomization on.",
    )
    if view.pooled:
        yield trial_report.ReportTable(
            "safety_deaths", section, "Deaths (all arms pooled)", death_counts(dataset)
        )
        return
    yield trial_report.ReportTable(
        "safety_sae_listing",
        section,
        "Serious adverse events per patient",
        serious_adverse_events(dataset),
        "Attribution to PRRT and to capecitabine as the investigator assessed it.",
    )
    yield trial_report.ReportTable(
        "safety_deaths",
        section,
        "Deaths per patient",
        deaths(dataset),
        "Days after the last cycle given on or before the death.",
    )

"""The trial report as one data object: every number (tables), every figure (SVG) and the
rules behind them, built from an analysis dataset. `report_files` writes it as HTML, PDF,
CSV and JSON."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

import pandas as pd

from startrt.analysis import (
    baseline,
    consort,
    efficacy,
    exposure,
    figures,
    interim,
    safety,
    safety_labs,
    safety_tables,
    subgroups,
)
from startrt.analysis.consort_diagram import consort_svg
from startrt.analysis.costs import UnitCosts
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.endpoints import endpoint_rules, survival_endpoints
from startrt.analysis.groups import arm_ids
from startrt.analysis.policies import policies_figure, policies_table
from startrt.analysis.pooled import (
    POOLED,
    pooled_dataset,
    pooled_flow,
    pooled_patients,
    pooled_rows,
    without_arms,
)
from startrt.analysis.power import DesignAssumptions, sample_size_table
from startrt.analysis.resources import (
    costs_per_group,
    costs_per_patient,
    resources_per_group,
    resources_per_patient,
    visits_by_kind,
)
from startrt.analysis.response import best_response_per_patient, response_rates
from startrt.analysis.survival import KaplanMeier
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import Protocol


class Section(StrEnum):
    """The report's sections, in their order (a DMC report's: flow, baseline, exposure,
    efficacy, safety)."""

    FLOW = "Trial flow"
    BASELINE = "Baseline characteristics"
    EXPOSURE = "Treatment exposure"
    EFFICACY = "Efficacy"
    SAFETY = "Safety"
    RESOURCES = "Resource demands"
    DESIGN = "Sample size and power"


SECTIONS = tuple(Section)
RULES = (
    " ".join((consort.__doc__ or "").split()),
    " ".join((safety.__doc__ or "").split()),
    "Resource demands count every randomized patient (zeros for what was not used); an "
    "infusion is a cycle with activity administered.",
    "Tables and figures are numbered in the order of this report; the column headers name "
    "each quantity with its unit. The CSV files and report.json keep the columns' machine "
    "names (trial_id, median_months, ...): they are the data contract for other programs.",
)


KM_GROUPINGS = {"arm": "by randomized arm", "treatment_arm": "by treatment arm"}


class ReportKind(StrEnum):
    """The two reports a data monitoring committee reads (`startrt.analysis.pooled`)."""

    OPEN = "open"
    CLOSED = "closed"

    @property
    def banner(self) -> str:
        """The report's mark on its title page and every page's header."""
        if self is ReportKind.OPEN:
            return "OPEN REPORT \u2014 arms pooled"
        return "CLOSED REPORT \u2014 for the DMC only"


@dataclass(frozen=True)
class ReportTable:
    """A table of the report; a `listing` (one row per patient) goes to CSV and JSON only."""

    name: str
    section: str
    title: str
    frame: pd.DataFrame
    note: str = ""
    listing: bool = False
    number: int = 0
    """Its number in the report ("Table 3"); 0 for a listing (CSV and JSON only)."""
    keys: int = 0
    """The leading columns naming a row, repeated in each piece of a table split for print
    (0: the leading text columns, at least one)."""


@dataclass(frozen=True)
class ReportFigure:
    name: str
    section: str
    title: str
    svg: str
    number: int = 0
    """Its number in the report ("Figure 2"); the CONSORT diagram is figure 1."""


@dataclass(frozen=True)
class TrialReport:
    """Everything the report shows, for every output format."""

    title: str
    protocol: str
    cut_off: date
    source: str
    generated_on: date
    consort: consort.ConsortFlow
    consort_svg: str
    tables: tuple[ReportTable, ...]
    figures: tuple[ReportFigure, ...]
    rules: tuple[str, ...]
    notes: tuple[str, ...]
    kind: ReportKind = ReportKind.CLOSED

    def section_tables(self, section: str) -> list[ReportTable]:
        return [t for t in self.tables if t.section == section and not t.listing]

    def section_figures(self, section: str) -> list[ReportFigure]:
        return [f for f in self.figures if f.section == section]


def build_report(
    dataset: TrialDataset,
    *,
    unit_costs: UnitCosts | None = None,
    generated_on: date | None = None,
    assumptions: DesignAssumptions | None = None,
    policies: pd.DataFrame | None = None,
    kind: ReportKind = ReportKind.CLOSED,
) -> TrialReport:
    """The whole report of `dataset` (costs only with `unit_costs`; with `policies`, an
    in-silico trial's planning policies, `startrt simulate --policies`): the closed report by
    arm, or the open one with the arms pooled and without any comparison of the arms."""
    choice = protocol_of(dataset.protocol)
    protocol = choice.protocol
    limits = safety.dose_limits(protocol)
    endpoints = survival_endpoints(dataset, protocol)
    flow = consort.consort_flow(dataset)
    view = ReportView(dataset, endpoints, protocol)
    if kind is ReportKind.OPEN:  # arms pooled; no comparison of the arms, no listing
        flow, view = pooled_flow(flow), view.pooling()
    design = assumptions or DesignAssumptions()
    parts = [
        _consort_tables(flow),
        baseline.report_part(view),
        exposure.report_part(view),
        _efficacy(view),
        _safety(view, limits),
        safety_tables.report_part(view),
        safety_labs.report_part(view),
        _resources(view, unit_costs),
        _sample_size(endpoints, design),
    ]
    if not view.pooled:  # per patient or comparing the arms: the closed report only (each
        # lands in its section: the deviations in the trial flow, the subgroups in efficacy)
        parts += [
            _deviations(dataset),
            subgroups.report_part(dataset, endpoints, protocol),
            interim.report_part(endpoints, protocol, design),
            _policies(policies),
        ]
    tables, drawn = _numbered(item for part in parts for item in part)
    notes = [note for note in (choice.note, *limits.notes) if note]
    return TrialReport(
        title=f"{protocol.id}: {protocol.title}",
        protocol=dataset.protocol,
        cut_off=dataset.cut_off,
        source=dataset.source,
        generated_on=generated_on or date.today(),
        consort=flow,
        consort_svg=consort_svg(flow),
        tables=tuple(tables),
        figures=tuple(drawn),
        rules=(*endpoint_rules(protocol), *RULES),
        notes=tuple(notes),
        kind=kind,
    )


def _numbered(
    items: Iterator[ReportTable | ReportFigure],
) -> tuple[tuple[ReportTable, ...], tuple[ReportFigure, ...]]:
    """The tables and figures in the report's order (by section, then as made), numbered:
    tables shown from 1, listings 0, figures from 2 (the CONSORT diagram is figure 1)."""
    ordered = sorted(items, key=lambda item: SECTIONS.index(item.section))
    shown = [t for t in ordered if isinstance(t, ReportTable) and not t.listing]
    numbers = {id(table): index for index, table in enumerate(shown, start=1)}
    tables = tuple(
        replace(t, number=numbers.get(id(t), 0)) for t in ordered if isinstance(t, ReportTable)
    )
    drawn = [f for f in ordered if isinstance(f, ReportFigure)]
    return tables, tuple(replace(f, number=n) for n, f in enumerate(drawn, start=2))


@dataclass(frozen=True)
class ReportView:
    """What a part of the report reads: the data by arm (closed report) or with the arms
    pooled (open); parts in other modules take it as `report.ReportView`."""

    dataset: TrialDataset
    endpoints: pd.DataFrame
    protocol: Protocol
    pooled: bool = False

    def pooling(self) -> ReportView:
        return ReportView(
            pooled_dataset(self.dataset, self.protocol),
            pooled_patients(self.endpoints, self.protocol),
            self.protocol,
            pooled=True,
        )

    def table(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A summary or listing as the report shows it (pooled: the pool's rows, no arms)."""
        return without_arms(pooled_rows(frame, self.protocol)) if self.pooled else frame

    def figure_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A summary as a figure reads it (pooled: the pool's rows, named `POOLED`)."""
        return pooled_rows(frame, self.protocol) if self.pooled else frame

    def groups(self, column: str) -> tuple[str, ...]:
        """The groups of `column` (arm or treatment_arm) the figures show."""
        return (POOLED,) if self.pooled else arm_ids(self.protocol, column)

    def listing(self, name: str, section: str, title: str, frame: pd.DataFrame) -> Part:
        """A listing, one row per patient (CSV and JSON); none in the open report, where a
        patient's cycles, doses or tablets would tell their arm."""
        if not self.pooled:
            yield ReportTable(name, section, title, frame, listing=True)

    def curves(self, endpoint: str, column: str) -> list[tuple[str, KaplanMeier]]:
        curves = efficacy.curves(self.endpoints, endpoint, column, self.protocol)
        return [(POOLED, km) for _, km in curves] if self.pooled else curves


Part = Iterator[ReportTable | ReportFigure]


def _consort_tables(flow: consort.ConsortFlow) -> Part:
    rows = [
        {"arm": "all", "stage": stage, "patients": getattr(flow, stage)}
        for stage in (
            "screened",
            "eligible",
            "not_eligible",
            "eligibility_pending",
            "eligible_not_randomized",
            "randomized",
        )
    ]
    rows[3:3] = [
        {"arm": "all", "stage": f"not_eligible: {r.reason}", "patients": r.patients}
        for r in flow.not_eligible_reasons
    ]
    for arm in flow.arms:
        for stage in ("allocated", "treated", "not_treated", "completed", "discontinued"):
            rows.append({"arm": arm.arm, "stage": stage, "patients": getattr(arm, stage)})
        for reason, count in arm.discontinued_reasons.items():
            rows.append({"arm": arm.arm, "stage": f"discontinued: {reason}", "patients": count})
        for stage in ("ongoing", "died", "analysed"):
            rows.append({"arm": arm.arm, "stage": stage, "patients": getattr(arm, stage)})
    yield ReportTable(
        "consort", Section.FLOW, "CONSORT flow counts", pd.DataFrame(rows), listing=True
    )


DEVIATION_COLUMNS = (
    "trial_id",
    "cycle",
    "kind",
    "recorded_on",
    "description",
    "reason",
    "signed_by",
    "signed_on",
    "predicted_cumulative_kidney_gy",
)


def _deviations(dataset: TrialDataset) -> Part:
    """Every protocol deviation standing at the cut-off, with its reason and signer."""
    frame = dataset.deviations.sort_values(["trial_id", "cycle", "recorded_on"], kind="stable")
    frame = frame.loc[:, list(DEVIATION_COLUMNS)].reset_index(drop=True)
    yield ReportTable(
        "protocol_deviations",
        Section.FLOW,
        f"Protocol deviations ({len(frame)})",
        frame,
        "A cycle date outside its protocol window (window), or a planned activity above the "
        "planner's proposal, past a dose limit or unchecked for want of dosimetry (activity; "
        "signed by the investigator before the cycle was released). Predicted cumulative "
        "kidney dose in Gy after the planned activity.",
    )


def _efficacy(view: ReportView) -> Part:
    section = Section.EFFICACY
    dataset, endpoints, protocol = view.dataset, view.endpoints, view.protocol
    shown = ("arm",) if view.pooled else ("arm", "treatment_arm")
    for endpoint, name in efficacy.ENDPOINTS.items():
        for column in shown:
            curves = view.curves(endpoint, column)
            if curves and not (endpoint == "os" and column == "treatment_arm"):
                by = "all arms pooled" if view.pooled else KM_GROUPINGS[column]
                title = f"Kaplan-Meier: {name}, {by}"
                drawn = figures.km_figure(curves, title, protocol)
                yield ReportFigure(f"km_{endpoint}_{column}", section, title, drawn)
    yield ReportTable(
        "efficacy_kaplan_meier",
        section,
        "Kaplan-Meier summaries (95 % intervals)",
        view.table(efficacy.km_summary(endpoints, protocol)),
        "Median interval: Brookmeyer-Crowley; survival band: log(-log) with Greenwood's "
        "variance; RMST restricted to the shortest of the groups' longest follow-up.",
    )
    if not view.pooled:
        yield ReportTable(
            "efficacy_comparisons",
            section,
            "Personalized vs standard: log-rank, Cox, RMST",
            efficacy.comparisons(endpoints, protocol),
            "Hazard ratio < 1 favours the personalized arm; stratified analyses use the "
            "randomization stratum.",
        )
    yield ReportTable(
        "efficacy_response",
        section,
        "Best overall response (RECIST 1.1), objective response and disease control rates",
        view.table(response_rates(dataset)),
        "Exact (Clopper-Pearson) 95 % intervals; every randomized patient counts.",
    )
    yield from view.listing("efficacy_endpoints", section, "PFS and OS per patient", endpoints)
    yield from view.listing(
        "efficacy_best_response",
        section,
        "Best overall response per patient",
        best_response_per_patient(dataset),
    )


def _safety(view: ReportView, limits: safety.DoseLimits) -> Part:
    section, dataset, protocol = Section.SAFETY, view.dataset, view.protocol
    worst = safety.worst_grade_table(dataset)
    per_patient = safety.dose_per_patient(dataset, limits)
    cumulative = safety.cumulative_doses(dataset)
    egfr = safety.egfr_summary(dataset)
    by_term = view.figure_rows(worst[worst["term"] != safety.ANY_TERM])
    if len(by_term):
        yield ReportFigure(
            "toxicity",
            section,
            "Worst CTCAE grade per term and source",
            figures.toxicity_figure(by_term, protocol, view.groups("arm")),
        )
    if len(cumulative):
        yield ReportFigure(
            "kidney_dose",
            section,
            "Cumulative kidney absorbed dose per patient against the limit",
            figures.kidney_dose_figure(
                view.figure_rows(cumulative),
                limits.kidney_limit_gy,
                protocol,
                view.groups("treatment_arm"),
            ),
        )
    if len(egfr):
        drawn = figures.egfr_figure(view.figure_rows(egfr), protocol, view.groups("treatment_arm"))
        yield ReportFigure("egfr", section, "eGFR over time", drawn)
    yield ReportTable(
        "safety_worst_grade",
        section,
        "Patients by worst CTCAE v5.0 grade (treatment-emergent)",
        view.table(worst),
    )
    yield ReportTable(
        "safety_grade_3_4",
        section,
        "Patients with a grade 3-4 event or result (exact 95 % intervals)",
        view.table(safety.grade_3_4_rates(dataset)),
    )
    yield ReportTable(
        "safety_egfr", section, "eGFR (mL/min/1.73 m\u00b2) by month", view.table(egfr)
    )
    yield ReportTable(
        "safety_dose_distribution",
        section,
        "Cumulative absorbed dose per patient (Gy)",
        view.table(safety.dose_distribution(per_patient, limits, protocol)),
        f"At the limit: at least {limits.near_fraction:.0%} of it; patients with a cycle "
        "without dosimetry are left out of the statistics.",
    )
    if not view.pooled:  # patients named with their doses and cycles: closed report only
        yield ReportTable(
            "safety_patients_at_limit",
            section,
            "Patients at or over a limit",
            safety.patients_at_limit(per_patient),
        )
    yield from view.listing("safety_dose_per_patient", section, "Doses per patient", per_patient)
    yield from view.listing("safety_dose_per_cycle", section, "Doses per cycle", cumulative)
    yield from view.listing(
        "safety_egfr_per_patient",
        section,
        "eGFR per patient and month",
        safety.egfr_over_time(dataset),
    )


def _policies(frame: pd.DataFrame | None) -> Part:
    """The in-silico trial's planning policies, in the safety section."""
    if frame is None:
        return
    section = Section.SAFETY
    yield ReportFigure(
        "planning_policies",
        section,
        "Planning policies (in-silico replicate trials): patients over the renal limit "
        "against cycles per personalized patient",
        policies_figure(frame),
    )
    yield ReportTable(
        "planning_policies",
        section,
        "Planning policies on the same virtual patients (personalized arm; means over "
        f"{int(frame['replicates'].iloc[0])} replicate trials)",
        policies_table(frame),
        "Shares of personalized patients whose true or measured cumulative kidney dose "
        "exceeds the limit; power of the PFS log-rank test (simulation.policies).",
    )


def _resources(view: ReportView, unit_costs: UnitCosts | None) -> Part:
    section, dataset, protocol = Section.RESOURCES, view.dataset, view.protocol
    per_patient = resources_per_patient(dataset)
    if len(per_patient):
        yield ReportFigure(
            "cycles_per_patient",
            section,
            "Cycles per patient",
            figures.cycles_figure(
                view.figure_rows(per_patient), protocol, view.groups("treatment_arm")
            ),
        )
    yield ReportTable(
        "resources_per_group",
        section,
        "Resource use per group (totals and per randomized patient)",
        view.table(resources_per_group(per_patient, protocol)),
    )
    yield ReportTable(
        "resources_visits", section, "Visits by kind", view.table(visits_by_kind(dataset))
    )
    yield from view.listing(
        "resources_per_patient", section, "Resource use per patient", per_patient
    )
    if unit_costs is None:
        return
    currency = unit_costs.currency
    costs = costs_per_patient(per_patient, unit_costs)
    yield ReportTable(
        "costs_unit_costs",
        section,
        f"Unit costs ({currency})",
        pd.DataFrame(
            {
                "measure": list(unit_costs.cost_per_unit),
                "cost_per_unit": list(unit_costs.cost_per_unit.values()),
                "currency": currency,
            }
        ),
        f"From {unit_costs.source}; measures not listed are not costed.",
    )
    yield ReportTable(
        "costs_per_group",
        section,
        f"Cost per group ({currency})",
        view.table(costs_per_group(costs, protocol)),
    )
    yield from view.listing("costs_per_patient", section, f"Cost per patient ({currency})", costs)


def _sample_size(endpoints: pd.DataFrame, assumptions: DesignAssumptions) -> Part:
    observed = int(endpoints["pfs_event"].sum())
    yield ReportTable(
        "sample_size",
        Section.DESIGN,
        "PFS events and patients needed; the boundary at the events observed so far",
        sample_size_table(observed, assumptions),
        assumptions.describe()
        + " Boundary: Lan-DeMets O'Brien-Fleming-type spending, a look now and a final one.",
    )

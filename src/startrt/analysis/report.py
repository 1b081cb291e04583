"""The trial report as one data object: every number (tables), every figure (SVG) and the
rules behind them, built from an analysis dataset. `report_files` writes it as HTML, PDF,
CSV and JSON."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pandas as pd

from startrt.analysis import consort, efficacy, figures, safety
from startrt.analysis.consort_diagram import consort_svg
from startrt.analysis.costs import UnitCosts
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.endpoints import endpoint_rules, survival_endpoints
from startrt.analysis.policies import policies_figure, policies_table
from startrt.analysis.power import DesignAssumptions, sample_size_table
from startrt.analysis.resources import (
    costs_per_group,
    costs_per_patient,
    resources_per_group,
    resources_per_patient,
    visits_by_kind,
)
from startrt.analysis.response import best_response_per_patient, response_rates
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import Protocol

SECTIONS = ("Trial flow", "Efficacy", "Safety", "Resource demands", "Sample size and power")
RULES = (
    " ".join((consort.__doc__ or "").split()),
    " ".join((safety.__doc__ or "").split()),
    "Resource demands count every randomized patient (zeros for what was not used); an "
    "infusion is a cycle with activity administered.",
)


@dataclass(frozen=True)
class ReportTable:
    """A table of the report; a `listing` (one row per patient) goes to CSV and JSON only."""

    name: str
    section: str
    title: str
    frame: pd.DataFrame
    note: str = ""
    listing: bool = False


@dataclass(frozen=True)
class ReportFigure:
    name: str
    section: str
    title: str
    svg: str


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
) -> TrialReport:
    """The whole report of `dataset` (costs only with `unit_costs`; with `policies`, an
    in-silico trial's planning policies, `startrt simulate --policies`)."""
    choice = protocol_of(dataset.protocol)
    protocol = choice.protocol
    limits = safety.dose_limits(protocol)
    endpoints = survival_endpoints(dataset, protocol)
    flow = consort.consort_flow(dataset)
    parts = [
        _consort_tables(flow),
        _deviations(dataset),
        _efficacy(dataset, endpoints, protocol),
        _safety(dataset, limits, protocol),
        _resources(dataset, unit_costs, protocol),
        _sample_size(endpoints, assumptions or DesignAssumptions()),
        _policies(policies),
    ]
    items = [item for part in parts for item in part]
    tables = [item for item in items if isinstance(item, ReportTable)]
    drawn = [item for item in items if isinstance(item, ReportFigure)]
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
    )


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
    for arm in flow.arms:
        for stage in ("allocated", "treated", "not_treated", "completed", "discontinued"):
            rows.append({"arm": arm.arm, "stage": stage, "patients": getattr(arm, stage)})
        for reason, count in arm.discontinued_reasons.items():
            rows.append({"arm": arm.arm, "stage": f"discontinued: {reason}", "patients": count})
        for stage in ("ongoing", "died", "analysed"):
            rows.append({"arm": arm.arm, "stage": stage, "patients": getattr(arm, stage)})
    yield ReportTable(
        "consort", SECTIONS[0], "CONSORT flow counts", pd.DataFrame(rows), listing=True
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
        SECTIONS[0],
        f"Protocol deviations ({len(frame)})",
        frame,
        "A cycle date outside its protocol window (window), or a planned activity above the "
        "planner's proposal, past a dose limit or unchecked for want of dosimetry (activity; "
        "signed by the investigator before the cycle was released). Predicted cumulative "
        "kidney dose in Gy after the planned activity.",
    )


def _efficacy(dataset: TrialDataset, endpoints: pd.DataFrame, protocol: Protocol) -> Part:
    section = SECTIONS[1]
    for endpoint, name in efficacy.ENDPOINTS.items():
        for column, by in (("arm", "randomized arm"), ("treatment_arm", "treatment arm")):
            curves = efficacy.curves(endpoints, endpoint, column, protocol)
            if curves and not (endpoint == "os" and column == "treatment_arm"):
                title = f"Kaplan-Meier: {name} by {by}"
                drawn = figures.km_figure(curves, title, protocol)
                yield ReportFigure(f"km_{endpoint}_{column}", section, title, drawn)
    yield ReportTable(
        "efficacy_kaplan_meier",
        section,
        "Kaplan-Meier summaries (months; 95 % intervals)",
        efficacy.km_summary(endpoints, protocol),
        "Median interval: Brookmeyer-Crowley; survival band: log(-log) with Greenwood's "
        "variance; RMST restricted to the shortest of the groups' longest follow-up.",
    )
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
        response_rates(dataset),
        "Exact (Clopper-Pearson) 95 % intervals; every randomized patient counts.",
    )
    yield ReportTable(
        "efficacy_endpoints", section, "PFS and OS per patient", endpoints, listing=True
    )
    yield ReportTable(
        "efficacy_best_response",
        section,
        "Best overall response per patient",
        best_response_per_patient(dataset),
        listing=True,
    )


def _safety(dataset: TrialDataset, limits: safety.DoseLimits, protocol: Protocol) -> Part:
    section = SECTIONS[2]
    worst = safety.worst_grade_table(dataset)
    per_patient = safety.dose_per_patient(dataset, limits)
    cumulative = safety.cumulative_doses(dataset)
    egfr = safety.egfr_summary(dataset)
    by_term = worst[worst["term"] != safety.ANY_TERM]
    if len(by_term):
        yield ReportFigure(
            "toxicity",
            section,
            "Worst CTCAE grade per term",
            figures.toxicity_figure(by_term, protocol),
        )
    if len(cumulative):
        yield ReportFigure(
            "kidney_dose",
            section,
            "Cumulative kidney absorbed dose per patient against the limit",
            figures.kidney_dose_figure(cumulative, limits.kidney_limit_gy, protocol),
        )
    if len(egfr):
        yield ReportFigure("egfr", section, "eGFR over time", figures.egfr_figure(egfr, protocol))
    yield ReportTable(
        "safety_worst_grade",
        section,
        "Patients by worst CTCAE v5.0 grade (treatment-emergent)",
        worst,
    )
    yield ReportTable(
        "safety_grade_3_4",
        section,
        "Patients with a grade 3-4 event or result (exact 95 % intervals)",
        safety.grade_3_4_rates(dataset),
    )
    yield ReportTable("safety_egfr", section, "eGFR (ml/min/1.73 m2) by month", egfr)
    yield ReportTable(
        "safety_dose_distribution",
        section,
        "Cumulative absorbed dose per patient (Gy)",
        safety.dose_distribution(per_patient, limits, protocol),
        f"At the limit: at least {limits.near_fraction:.0%} of it; patients with a cycle "
        "without dosimetry are left out of the statistics (n_incomplete).",
    )
    yield ReportTable(
        "safety_patients_at_limit",
        section,
        "Patients at or over a limit",
        safety.patients_at_limit(per_patient),
    )
    yield ReportTable(
        "safety_dose_per_patient", section, "Doses per patient", per_patient, listing=True
    )
    yield ReportTable("safety_dose_per_cycle", section, "Doses per cycle", cumulative, listing=True)
    yield ReportTable(
        "safety_egfr_per_patient",
        section,
        "eGFR per patient and month",
        safety.egfr_over_time(dataset),
        listing=True,
    )


def _policies(frame: pd.DataFrame | None) -> Part:
    """The in-silico trial's planning policies, in the safety section."""
    if frame is None:
        return
    section = SECTIONS[2]
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


def _resources(dataset: TrialDataset, unit_costs: UnitCosts | None, protocol: Protocol) -> Part:
    section = SECTIONS[3]
    per_patient = resources_per_patient(dataset)
    if len(per_patient):
        yield ReportFigure(
            "cycles_per_patient",
            section,
            "Cycles per patient",
            figures.cycles_figure(per_patient, protocol),
        )
    yield ReportTable(
        "resources_per_group",
        section,
        "Resource use per group (totals and per randomized patient)",
        resources_per_group(per_patient, protocol),
    )
    yield ReportTable("resources_visits", section, "Visits by kind", visits_by_kind(dataset))
    yield ReportTable(
        "resources_per_patient", section, "Resource use per patient", per_patient, listing=True
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
        costs_per_group(costs, protocol),
    )
    yield ReportTable(
        "costs_per_patient", section, f"Cost per patient ({currency})", costs, listing=True
    )


def _sample_size(endpoints: pd.DataFrame, assumptions: DesignAssumptions) -> Part:
    observed = int(endpoints["pfs_event"].sum())
    yield ReportTable(
        "sample_size",
        SECTIONS[4],
        "PFS events and patients needed; the boundary at the events observed so far",
        sample_size_table(observed, assumptions),
        assumptions.describe()
        + " Boundary: Lan-DeMets O'Brien-Fleming-type spending, a look now and a final one.",
    )

"""Enrolment counts for the dashboard: screen failures by the criterion that failed, and
randomized patients per stratum (never per arm: with permuted blocks, the arms already
allocated in a stratum tell the next allocation; ICH E9 2.3, CONSORT 2010 item 9).

A screen failure is a patient whose eligibility decision is "not eligible"; each failing
criterion counts the patient once, so a patient failing two criteria counts under both and
the reasons add up to more than the patients (CONSORT 2010 flow diagram, "excluded,
not meeting inclusion criteria", with reasons).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from startrt import fields
from startrt.protocol.definition import Protocol
from startrt.protocol.eligibility import EligibilityCriterion, EligibilityDecision
from startrt.protocol.randomization import Stratum, stratum_label
from startrt.protocol.stratification import protocol_strata


def failure_reason(criterion: EligibilityCriterion) -> str:
    """A failing criterion as the eligibility verdict names it, without the patient's value:
    "GFR (inclusion: > 50)", "Earlier PRRT (exclusion)"."""
    if isinstance(criterion.value, bool) or not criterion.field:
        return f"{criterion.text} ({criterion.kind})"
    return f"{fields.meta(criterion.field).label} ({criterion.kind}: {criterion.rule_text()})"


@dataclass(frozen=True)
class FailureCount:
    criterion_id: str
    reason: str
    patients: int


@dataclass(frozen=True)
class ScreenFailures:
    """`patients` not eligible, and per failing criterion the patients failing it (most
    first, then in criterion id order)."""

    patients: int
    reasons: tuple[FailureCount, ...]


def screen_failures(decisions: Iterable[EligibilityDecision]) -> ScreenFailures:
    """Count the not-eligible decisions (one per patient: its latest) by failing criterion."""
    patients = 0
    counts: Counter[tuple[str, str]] = Counter()
    for decision in decisions:
        if decision.eligible is not False:
            continue
        patients += 1
        counts.update({(c.id, failure_reason(c)) for c in decision.failing()})
    reasons = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ScreenFailures(patients, tuple(FailureCount(key[0], key[1], n) for key, n in reasons))


def stratum_text(stratum: Stratum) -> str:
    """A stratum for people: "Lund · FDG-PET positive" ("All patients" unstratified)."""
    return (
        " · ".join(level if factor == "site" else f"FDG-PET {level}" for factor, level in stratum)
        or "All patients"
    )


@dataclass(frozen=True)
class StratumCount:
    """Randomized patients of a stratum; `within_site` names it inside its site."""

    label: str  # the stored stratum label, "site=Lund;fdg=positive"
    text: str
    site: str | None
    within_site: str
    randomized: int


def randomized_by_stratum(
    protocol: Protocol, sites: Sequence[str], stratum_labels: Iterable[str]
) -> tuple[StratumCount, ...]:
    """Randomized patients per stratum of `protocol` (the strata of `sites` only, every one
    listed, empty ones as 0), from the stored stratum label of each randomized patient."""
    counts = Counter(stratum_labels)
    rows = []
    for stratum in protocol_strata(protocol).strata():
        site = dict(stratum).get("site")
        if site is not None and site not in sites:
            continue
        label = stratum_label(stratum)
        rest = tuple(pair for pair in stratum if pair[0] != "site")
        rows.append(
            StratumCount(label, stratum_text(stratum), site, stratum_text(rest), counts[label])
        )
    return tuple(rows)

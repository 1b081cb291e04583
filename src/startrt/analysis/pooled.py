"""The open report's view of the trial: the arms pooled.

A data monitoring committee gets two reports: the open one, seen by the sponsor and the
investigators, with the data pooled over the arms, and the closed one, by arm, for the committee
alone (Ellenberg, Fleming & DeMets, Data Monitoring Committees in Clinical Trials, 2nd ed.,
Wiley 2019, ch. 6; DAMOCLES, Lancet 2005;365:711-722).

The library's group summaries (`groups.grouped`) group by the protocol's arms. To pool, every
assigned patient is put in one stand-in arm, the protocol's first randomized arm, after the
per-patient rules (endpoints, doses, completion) were applied with the real arms; the stand-in
group's rows are then the pool, named `POOLED`, and every other group is empty and left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pandas as pd

from startrt.analysis.consort import ArmFlow, ConsortFlow
from startrt.analysis.dataset import TrialDataset
from startrt.protocol.definition import Protocol

POOLED = "all arms"
ARM_COLUMNS = ("arm", "treatment_arm")
GROUP_COLUMNS = ("group", *ARM_COLUMNS)


def _stand_in(protocol: Protocol) -> str:
    return protocol.randomization.arms[0]


def pooled_patients(frame: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """`frame` (with arm and treatment_arm) with every assigned patient in the stand-in arm."""
    assigned = frame["arm"].notna()
    return frame.assign(
        **{column: frame[column].where(~assigned, _stand_in(protocol)) for column in ARM_COLUMNS}
    )


def pooled_dataset(dataset: TrialDataset, protocol: Protocol) -> TrialDataset:
    """`dataset` with every randomized patient in the stand-in arm."""
    return replace(dataset, patients=pooled_patients(dataset.patients, protocol))


def pooled_rows(frame: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """A summary of pooled data as the pool's rows: the stand-in group's (by randomized arm
    where the frame has a `grouping`), with the stand-in named `POOLED`."""
    rows = frame
    if "grouping" in rows:
        rows = rows[rows["grouping"] == "arm"]
    if "group" in rows:
        rows = rows[rows["group"] == _stand_in(protocol)]
    named = {
        column: rows[column].replace(_stand_in(protocol), POOLED)
        for column in GROUP_COLUMNS
        if column in rows
    }
    return rows.assign(**named).reset_index(drop=True)


def without_arms(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` without the columns naming an arm or a grouping by arm."""
    return frame.drop(columns=[c for c in (*ARM_COLUMNS, "grouping") if c in frame])


def pooled_flow(flow: ConsortFlow) -> ConsortFlow:
    """The flow with its arms summed into one (`POOLED`): screening to randomization as is."""
    arms = flow.arms
    reasons: Counter[str] = Counter()
    for arm in arms:
        reasons.update(arm.discontinued_reasons)
    counts = {
        name: sum(getattr(arm, name) for arm in arms)
        for name in (
            "allocated",
            "treated",
            "not_treated",
            "completed",
            "discontinued",
            "ongoing",
            "died",
            "analysed",
        )
    }
    pooled = ArmFlow(
        arm=POOLED,
        treatment_arms={POOLED: counts["allocated"]},
        discontinued_reasons=dict(sorted(reasons.items())),
        **counts,
    )
    return replace(flow, arms=(pooled,) if arms else ())

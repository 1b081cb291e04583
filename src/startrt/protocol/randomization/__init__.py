"""Randomization for START-01: stratified permuted blocks, Pocock-Simon minimization, balance."""

from __future__ import annotations

from startrt.protocol.randomization.balance import (
    BalanceReport,
    BlockBalance,
    GroupBalance,
    balance_report,
)
from startrt.protocol.randomization.blocks import (
    CSV_HEADER,
    BlockListParameters,
    RandomizationList,
    Slot,
    generate_block_list,
)
from startrt.protocol.randomization.design import StrataDesign, Stratum, stratum_label
from startrt.protocol.randomization.minimization import MinimizationDecision, Minimizer
from startrt.protocol.randomization.rng import RandomStream, derive_seed

__all__ = [
    "CSV_HEADER",
    "BalanceReport",
    "BlockBalance",
    "BlockListParameters",
    "GroupBalance",
    "MinimizationDecision",
    "Minimizer",
    "RandomStream",
    "RandomizationList",
    "Slot",
    "StrataDesign",
    "Stratum",
    "balance_report",
    "derive_seed",
    "generate_block_list",
    "stratum_label",
]

"""`make bench`: run every benchmark and print its ratio against its in-run baseline.

Timings are medians of repeated runs; only the ratio is meaningful across machines.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from bench import cli, dosimetry, planning, simulation, treatment_page, web_concurrency
from bench.convolution import compare_convolution
from startrt.protocol.course import CycleDose
from startrt.protocol.cycle_planning import plan_next_cycle
from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import RandomStream, StrataDesign, generate_block_list

Work = Callable[[], object]
Benchmark = tuple[str, Work, Work]


def median_seconds(work: Work, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def randomization_list() -> Benchmark:
    """Our version-stable list (raw PCG64 bits, own shuffle, full validation) against the same
    number of block permutations by NumPy's Generator, whose streams may change across versions."""
    design = StrataDesign({"site": ("A", "B", "C", "D"), "fdg": ("negative", "positive")})

    def numpy_permutations() -> object:
        generator = np.random.default_rng(1)
        return [generator.permutation(["s", "s", "p", "p"]) for _ in range(8 * 75)]

    return (
        "randomization list, 8 strata x 300 slots, vs NumPy permutations",
        lambda: generate_block_list(seed=1, n_per_stratum=300, strata=design),
        numpy_permutations,
    )


def uniform_draws() -> Benchmark:
    """Unbiased integer draws from raw bits against Python's random.randrange."""
    stream, python = RandomStream(1), random.Random(1)
    return (
        "10,000 uniform_int(6) draws vs random.randrange",
        lambda: [stream.uniform_int(6) for _ in range(10_000)],
        lambda: [python.randrange(6) for _ in range(10_000)],
    )


def cycle_planning() -> Benchmark:
    """Planning after 6 cycles (validated inputs, decision record) against the bare AD rule."""
    protocol = default_protocol()
    cycles = tuple(CycleDose(activity_gbq=7.5, kidney_dose_gy=4.0 + i / 10) for i in range(6))
    doses = [c.kidney_dose_gy or 0.0 for c in cycles]
    return (
        "200 x plan_next_cycle vs bare arithmetic of the AD rule",
        lambda: [plan_next_cycle("dTOC", cycles, protocol) for _ in range(200)],
        lambda: [min(7.5, (30.0 - sum(doses)) / (doses[-1] / 7.5)) for _ in range(200)],
    )


def protocol_benchmarks() -> None:
    print(f"{'benchmark':<66} {'ours ms':>9} {'base ms':>9} {'ratio':>7}")
    for name, ours, baseline in (randomization_list(), uniform_draws(), cycle_planning()):
        ours_s, base_s = median_seconds(ours), median_seconds(baseline)
        print(f"{name:<66} {ours_s * 1e3:9.2f} {base_s * 1e3:9.2f} {ours_s / base_s:7.1f}")


def convolution_benchmark() -> None:
    result = compare_convolution(size=128, repeats=3)
    print(
        f"\nvoxel-kernel convolution, 128^3, one core: FFT {result['fft_seconds']:.3f} s, "
        f"scipy.ndimage.convolve {result['direct_seconds']:.2f} s -> FFT "
        f"{result['speedup']:.0f}x faster (target >= 20x); largest relative difference "
        f"{result['max_relative_difference']:.1e}"
    )


SECTIONS = {
    "protocol": protocol_benchmarks,
    "planning": planning.main,
    "convolution": convolution_benchmark,
    "dosimetry": dosimetry.main,
    "simulation": simulation.main,
    "cli": cli.main,
    "web": web_concurrency.main,
    "treatment": treatment_page.main,
}


def main() -> None:
    """Run every section, or those named on the command line (python -m bench dosimetry)."""
    for name in sys.argv[1:] or list(SECTIONS):
        SECTIONS[name]()


if __name__ == "__main__":
    main()

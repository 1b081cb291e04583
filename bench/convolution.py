"""FFT kernel convolution (`kernel_dose_gy`) against direct convolution (scipy.ndimage.convolve,
mode "constant") with the same 11^3 voxel S kernel on the same random TIA map, one core."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from startrt.dosimetry.voxel_dose import kernel_dose_gy
from startrt.imaging.volume import Grid, Volume
from startrt.physics.voxel_kernels import load_kernel

VOXEL_MM = 4.8
SECONDS_PER_HOUR = 3600.0
MGY_PER_GY = 1000.0
FFT_RUNS_PER_REPEAT = 3  # the FFT is cheap: more runs make its best time less noisy


def _timed(work: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def compare_convolution(size: int = 128, repeats: int = 3) -> dict[str, float]:
    """Best seconds of both methods on a size^3 map (4.8 mm voxels), timed interleaved so machine
    load hits both alike; their ratio (direct / FFT) and the largest voxel-wise relative
    difference of the two dose maps."""
    kernel = load_kernel(VOXEL_MM)
    grid = Grid((size, size, size), (VOXEL_MM,) * 3, (0.0, 0.0, 0.0))
    tia = Volume(grid, np.random.default_rng(2024).random(grid.shape))
    s_gy_per_mbq_h = kernel.s_mgy_per_mbq_s * (SECONDS_PER_HOUR / MGY_PER_GY)

    def fft_dose() -> np.ndarray:
        return np.asarray(kernel_dose_gy(tia, kernel).dose.array)

    def direct_dose() -> np.ndarray:
        dose = ndimage.convolve(tia.array, s_gy_per_mbq_h, mode="constant", cval=0.0)
        return np.asarray(dose)

    fft_times, direct_times = [], []
    for _ in range(max(repeats, 1)):
        for _ in range(FFT_RUNS_PER_REPEAT):
            seconds, fast = _timed(fft_dose)
            fft_times.append(seconds)
        seconds, direct = _timed(direct_dose)
        direct_times.append(seconds)
    return {
        "size": float(size),
        "fft_seconds": min(fft_times),
        "direct_seconds": min(direct_times),
        "speedup": min(direct_times) / min(fft_times),
        "max_relative_difference": float(np.max(np.abs(fast - direct) / np.abs(direct))),
    }

"""Analytic phantom: truth by hand, exact voxelised totals, geometry, seeds, refusals."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from startrt.imaging.phantom import (
    CtStructure,
    Ellipsoid,
    MonoExponential,
    Organ,
    PhantomSpec,
    UptakeClearance,
    activity_map_mbq,
    activity_maps_mbq,
    blurred,
    ct_grid,
    ct_map_hu,
    default_phantom,
    label_masks,
    source_activity_maps_mbq,
    sphere,
    translated,
    truth,
    with_poisson_noise,
)
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

KIDNEY_KINETICS = UptakeClearance(0.0135, 45.0, 1.5)
KIDNEY = Organ(
    "left_kidney", Ellipsoid((40.0, 20.0, 0.0), (28.0, 22.0, 55.0)), 1.05, 30.0, KIDNEY_KINETICS
)
TUMOUR = Organ("tumour_1", sphere((-40.0, -20.0, 30.0), 30.0), 1.04, 35.0, MonoExponential(0.1, 50))


def small_spec(**changes: object) -> PhantomSpec:
    """32^3 voxels of 8 mm (field of view +-128 mm); body 100 x 80 x 110 mm."""
    spec = PhantomSpec(
        grid_size=32,
        voxel_mm=8.0,
        body=Ellipsoid((0.0, 0.0, 0.0), (100.0, 80.0, 110.0)),
        body_hu=40.0,
        background=MonoExponential(0.05, 20.0),
        organs=(KIDNEY, TUMOUR),
        ct_structures=(CtStructure("spine", Ellipsoid((0.0, 60.0, 0.0), (8.0, 8.0, 60.0)), 400.0),),
    )
    return replace(spec, **changes)


def centroid_mm(volume: Volume) -> np.ndarray:
    """Activity-weighted mean position (x, y, z) in mm."""
    index_zyx = np.indices(volume.array.shape).reshape(3, -1)
    weights = volume.array.reshape(-1)
    mean_index_xyz = (index_zyx[::-1] * weights).sum(axis=1) / weights.sum()
    return volume.grid.index_to_physical(mean_index_xyz)


# --- kinetics and truth by hand ------------------------------------------------------------------


def test_kinetics_by_hand() -> None:
    mono = MonoExponential(0.04, 65.0)
    # one half-life: 0.04 / 2; integral f T / ln 2 = 0.04 * 65 / 0.693147 = 3.75101 h
    assert mono.fraction_at(65.0) == pytest.approx(0.02, rel=1e-12)
    assert mono.integral_h == pytest.approx(3.75101, rel=1e-5)
    # uptake: 0.0135 (2^(-50/45) - 2^(-50/1.5)) = 0.0135 (0.4629374 - 9.2e-11) = 0.00624965
    assert KIDNEY_KINETICS.fraction_at(50.0) == pytest.approx(0.00624965, rel=1e-5)
    assert KIDNEY_KINETICS.fraction_at(0.0) == 0.0
    # integral 0.0135 (45 - 1.5) / ln 2 = 0.58725 / 0.693147 = 0.847223 h
    assert KIDNEY_KINETICS.integral_h == pytest.approx(0.847223, rel=1e-5)


def test_uptake_peak_is_the_maximum_on_a_fine_time_grid() -> None:
    times = np.linspace(0.0, 100.0, 200001)
    sampled = max(KIDNEY_KINETICS.fraction_at(float(t)) for t in times[::10])
    assert KIDNEY_KINETICS.peak_fraction == pytest.approx(sampled, rel=1e-6)
    assert KIDNEY_KINETICS.peak_fraction >= sampled


def test_truth_of_one_organ_by_hand() -> None:
    kidney = truth(small_spec())["left_kidney"]
    # volume 4/3 pi 28 * 22 * 55 mm3 = 4.188790 * 33880 = 141916.2 mm3 = 141.9162 mL
    assert kidney.volume_ml == pytest.approx(141.9162, rel=1e-6)
    # mass 141.9162 * 1.05 = 149.0120 g
    assert kidney.mass_g == pytest.approx(149.0120, rel=1e-6)
    # TIA 7400 MBq * 0.847223 h = 6269.45 MBq h
    assert kidney.tia_mbq_h == pytest.approx(6269.45, rel=1e-5)
    # local deposition 147.9 keV * 1.602177e-16 J/keV * 3.6e9 decays/(MBq h) / 1e-3 kg/g
    # = 0.0853063 Gy g/(MBq h); dose 6269.45 * 0.0853063 / 149.0120 = 3.58913 Gy
    assert kidney.dose_gy == pytest.approx(3.58913, rel=1e-5)


def test_truth_of_a_sphere_by_hand() -> None:
    tumour = truth(small_spec())["tumour_1"]
    # 4/3 pi 15^3 = 14137.17 mm3 = 14.13717 mL; TIA 7400 * 0.1 * 50 / ln 2 = 53379.72 MBq h
    assert tumour.volume_ml == pytest.approx(14.13717, rel=1e-6)
    assert tumour.tia_mbq_h == pytest.approx(53379.72, rel=1e-6)
    # dose 53379.72 * 0.0853063 / (14.13717 * 1.04) = 4553.65 / 14.70266 = 309.72 Gy
    assert tumour.dose_gy == pytest.approx(309.72, rel=1e-4)


# --- voxelisation --------------------------------------------------------------------------------


@pytest.mark.parametrize("time_h", [0.0, 1.0, 4.0, 24.0, 96.0, 168.0])
def test_voxelised_source_totals_equal_the_analytic_activity(time_h: float) -> None:
    spec = small_spec()
    maps = source_activity_maps_mbq(spec, time_h)
    expected = {
        "left_kidney": 7400.0
        * 0.0135
        * (math.exp(-math.log(2) * time_h / 45.0) - math.exp(-math.log(2) * time_h / 1.5)),
        "tumour_1": 7400.0 * 0.1 * math.exp(-math.log(2) * time_h / 50.0),
        "background": 7400.0 * 0.05 * math.exp(-math.log(2) * time_h / 20.0),
    }
    assert set(maps) == set(expected)
    for name, volume in maps.items():
        assert float(volume.array.sum()) == pytest.approx(expected[name], rel=1e-9, abs=1e-12)
        assert volume.array.min() >= 0.0
    combined = activity_map_mbq(spec, time_h).array
    assert np.allclose(combined, sum(v.array for v in maps.values()), rtol=1e-12, atol=0)


def test_map_totals_follow_the_kinetics() -> None:
    maps = activity_maps_mbq(small_spec(), [50.0, 0.0])
    # at 50 h: tumour 0.1/2 = 0.05; background 0.05 * 2^-2.5 = 0.00883883; kidney 0.00624965
    # total 0.06508849 * 7400 = 481.6548 MBq
    assert float(maps[0].array.sum()) == pytest.approx(481.6548, rel=1e-6)
    # at 0 h: tumour 0.1 + background 0.05 (kidney not yet taken up) = 0.15 * 7400 = 1110 MBq
    assert float(maps[1].array.sum()) == pytest.approx(1110.0, rel=1e-9)


def test_default_phantom_totals_on_the_full_grid() -> None:
    spec = default_phantom(0)
    assert spec.grid.size == (128, 128, 128)
    assert spec.grid.spacing_mm == (4.8, 4.8, 4.8)
    for time_h, volume in zip((4.0, 168.0), activity_maps_mbq(spec, (4.0, 168.0)), strict=True):
        expected = spec.injected_activity_mbq * (
            spec.background.fraction_at(time_h)
            + sum(o.kinetics.fraction_at(time_h) for o in spec.organs)
        )
        assert float(volume.array.sum()) == pytest.approx(expected, rel=1e-9)


def test_organ_sits_at_its_centre_with_the_analytic_volume() -> None:
    spec = small_spec()
    kidney = source_activity_maps_mbq(spec, 24.0)["left_kidney"]
    # array is [z, y, x]: the centroid must come back at (40, 20, 0) mm, not axes swapped
    assert np.allclose(centroid_mm(kidney), [40.0, 20.0, 0.0], atol=0.5)
    # a voxel wholly inside holds A / sum(fractions); so sum(fractions) = A / interior value
    centre_index = np.round(spec.grid.physical_to_index([40.0, 20.0, 0.0])).astype(int)
    interior = kidney.array[centre_index[2], centre_index[1], centre_index[0]]
    volume_ml = float(kidney.array.sum()) / interior * spec.grid.voxel_volume_ml
    assert volume_ml == pytest.approx(141.9162, rel=0.01)


def test_translated_phantom_keeps_totals_and_moves() -> None:
    spec = small_spec()
    moved = translated(spec, (8.0, -4.0, 12.0))
    before = source_activity_maps_mbq(spec, 24.0)["tumour_1"]
    after = source_activity_maps_mbq(moved, 24.0)["tumour_1"]
    assert float(after.array.sum()) == pytest.approx(float(before.array.sum()), rel=1e-12)
    assert np.allclose(centroid_mm(after) - centroid_mm(before), [8.0, -4.0, 12.0], atol=0.5)
    assert truth(moved) == truth(spec)


# --- CT and label masks --------------------------------------------------------------------------


def hu_at(volume: Volume, point_mm: tuple[float, float, float]) -> float:
    x, y, z = np.round(volume.grid.physical_to_index(point_mm)).astype(int)
    return float(volume.array[z, y, x])


def test_ct_numbers() -> None:
    spec = small_spec()
    ct = ct_map_hu(spec)
    assert ct.grid == spec.grid
    assert hu_at(ct, (40.0, 20.0, 0.0)) == pytest.approx(30.0)  # kidney
    assert hu_at(ct, (-40.0, -20.0, 30.0)) == pytest.approx(35.0)  # tumour
    assert hu_at(ct, (0.0, 60.0, 0.0)) == pytest.approx(400.0)  # spine
    assert hu_at(ct, (0.0, -40.0, -60.0)) == pytest.approx(40.0)  # body
    assert hu_at(ct, (120.0, 120.0, 120.0)) == pytest.approx(-1000.0)  # air
    assert ct.array.min() >= -1000.0
    assert ct.array.max() <= 400.0


def test_ct_grid_covers_the_same_field_of_view() -> None:
    spec = small_spec()
    fine = ct_grid(spec, 2)
    assert fine.size == (64, 64, 64)
    assert fine.spacing_mm == (4.0, 4.0, 4.0)
    # first voxel edge: SPECT -124 - 4 = -128 mm; CT -126 - 2 = -128 mm
    assert fine.origin_mm[0] - 2.0 == pytest.approx(spec.grid.origin_mm[0] - 4.0)
    assert ct_map_hu(spec, 2).grid == fine


def test_label_masks_are_binary_with_the_organ_volume() -> None:
    spec = small_spec()
    masks = label_masks(spec, 2)
    assert set(masks) == {"left_kidney", "tumour_1"}
    kidney = masks["left_kidney"]
    assert set(np.unique(kidney.array)) == {0.0, 1.0}
    volume_ml = float(kidney.array.sum()) * kidney.grid.voxel_volume_ml
    assert volume_ml == pytest.approx(141.9162, rel=0.05)
    assert np.allclose(centroid_mm(kidney), [40.0, 20.0, 0.0], atol=1.0)


def test_an_organ_smaller_than_a_voxel_keeps_its_centre_voxel() -> None:
    # a 6 mm sphere centred on the corner of 8 voxels of 8 mm: each holds 1/8 of it, none half
    corner = (-44.0 + 4.0, -20.0 + 4.0, 28.0 + 4.0)
    tiny = replace(TUMOUR, shape=sphere(corner, 6.0))
    mask = label_masks(small_spec(organs=(KIDNEY, tiny)))["tumour_1"]
    assert float(mask.array.sum()) == 1.0
    x, y, z = np.argwhere(mask.array)[0][::-1]
    assert np.allclose(np.abs(mask.grid.index_to_physical([x, y, z]) - corner), 4.0)


# --- seeds and the default phantom ---------------------------------------------------------------


def test_same_seed_same_phantom_other_seed_other_phantom() -> None:
    first = default_phantom(3, grid_size=64)
    assert default_phantom(3, grid_size=64) == first
    other = default_phantom(4, grid_size=64)
    assert other != first
    for organ, moved in zip(first.organs, other.organs, strict=True):
        assert organ.shape.centre_mm != moved.shape.centre_mm
        assert organ.kinetics != moved.kinetics
    same = activity_map_mbq(default_phantom(3, grid_size=64), 24.0)
    assert np.array_equal(activity_map_mbq(first, 24.0).array, same.array)
    assert not np.array_equal(activity_map_mbq(other, 24.0).array, same.array)


def test_many_seeds_give_valid_phantoms() -> None:
    for seed in range(100):
        default_phantom(seed)  # the constructor refuses overlaps and organs outside the body


def test_default_phantom_is_plausible_for_lu177_dotatoc() -> None:
    spec = default_phantom(0, grid_size=64)
    assert spec.grid.spacing_mm == (9.6, 9.6, 9.6)
    assert spec.injected_activity_mbq == 7400.0
    doses = truth(spec)
    for kidney in ("left_kidney", "right_kidney"):
        kinetics = spec.organ(kidney).kinetics
        assert isinstance(kinetics, UptakeClearance)
        assert 0.009 <= kinetics.peak_fraction <= 0.02
        assert 40.0 <= kinetics.clearance_half_life_h <= 60.0
        assert 0.2 <= doses[kidney].dose_gy / 7.4 <= 0.8  # Gy/GBq; median 0.38 (REFERENCE.md)
    tumours = [o for o in spec.organs if o.name.startswith("tumour_")]
    assert len(tumours) == 3
    assert {round(2 * t.shape.semi_axes_mm[0]) for t in tumours} == {15, 25, 40}
    assert {"liver", "spleen"} <= set(spec.organ_names)


# --- geometry checks -----------------------------------------------------------------------------


def test_sphere_overlap_and_containment_boundaries() -> None:
    # two spheres of radius 10 overlap iff their centres are closer than 20 mm
    assert sphere((0, 0, 0), 20).overlaps(sphere((19.99, 0, 0), 20))
    assert not sphere((0, 0, 0), 20).overlaps(sphere((20.01, 0, 0), 20))
    # radius 10 inside radius 20 iff centre distance + 10 < 20
    assert sphere((0, 9.99, 0), 20).lies_inside(sphere((0, 0, 0), 40))
    assert not sphere((0, 10.01, 0), 20).lies_inside(sphere((0, 0, 0), 40))


def test_ellipsoid_tests_agree_with_sampling() -> None:
    rng = np.random.default_rng(7)
    directions = rng.normal(size=(200_000, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    decided = 0
    for _ in range(60):
        first = Ellipsoid(tuple(rng.uniform(-30, 30, 3)), tuple(rng.uniform(5, 40, 3)))
        second = Ellipsoid(tuple(rng.uniform(-30, 30, 3)), tuple(rng.uniform(5, 60, 3)))
        # surface points of `first` in the quadratic form of `second`
        points = np.asarray(first.centre_mm) + directions * np.asarray(first.semi_axes_mm)
        form = (((points - second.centre_mm) / np.asarray(second.semi_axes_mm)) ** 2).sum(axis=1)
        centre_inside = (
            ((np.asarray(second.centre_mm) - first.centre_mm) / first.semi_axes_mm) ** 2
        ).sum() <= 1
        sampled_min = 0.0 if centre_inside else form.min()
        if sampled_min < 0.98 or sampled_min > 1.02:
            assert first.overlaps(second) == (sampled_min < 1.0)
            decided += 1
        if form.max() < 0.98 or form.max() > 1.02:
            assert first.lies_inside(second) == (form.max() < 1.0)
    assert decided > 40


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"organs": (KIDNEY, replace(TUMOUR, shape=sphere((30, 20, 0), 30)))}, "left_kidney"),
        ({"organs": (replace(KIDNEY, shape=sphere((90.0, 0.0, 0.0), 30.0)),)}, "left_kidney"),
        ({"organs": (KIDNEY, replace(TUMOUR, name="left_kidney"))}, "organs"),
        ({"body": Ellipsoid((0.0, 0.0, 0.0), (130.0, 80.0, 110.0))}, "body"),
        ({"grid_size": 2}, "grid_size"),
        ({"supersampling": 0}, "supersampling"),
        ({"injected_activity_mbq": -1.0}, "injected_activity_mbq"),
        ({"background": MonoExponential(0.9, 20.0)}, "organs"),  # 0.9 + 0.1 + 0.0118 > 1
    ],
)
def test_bad_specs_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        small_spec(**changes)
    assert error.value.field == field


def test_ct_structure_may_not_overlap_an_organ() -> None:
    spine = CtStructure("spine", Ellipsoid((40.0, 20.0, 0.0), (5.0, 5.0, 5.0)), 400.0)
    with pytest.raises(InvalidInputError, match="overlaps spine"):
        small_spec(ct_structures=(spine,))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: MonoExponential(1.2, 50.0), "initial_fraction"),
        (lambda: MonoExponential(0.1, 200.0), "effective_half_life_h"),  # > 159.5 h physical
        (lambda: UptakeClearance(0.1, 50.0, 60.0), "uptake_half_life_h"),
        (lambda: Ellipsoid((0.0, 0.0, 0.0), (1.0, 0.0, 1.0)), "semi_axes_mm"),
        (lambda: Organ("Left Kidney", sphere((0, 0, 0), 10), 1.05, 30.0, KIDNEY_KINETICS), "name"),
        (lambda: Organ("background", sphere((0, 0, 0), 10), 1.05, 30.0, KIDNEY_KINETICS), "name"),
        (lambda: Organ("kidney", sphere((0, 0, 0), 10), 0.0, 30, KIDNEY_KINETICS), "density_g_ml"),
    ],
)
def test_bad_parts_are_refused(build: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        build()  # type: ignore[operator]
    assert error.value.field == field


def test_negative_time_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="time_h"):
        activity_map_mbq(small_spec(), -1.0)


def test_organ_smaller_than_the_sampling_is_refused() -> None:
    # 0.69 mm from the nearest of the 5^3 points per 8 mm voxel (1.6 mm apart): none inside
    tiny = replace(TUMOUR, shape=sphere((-42.0, -18.0, 30.0), 0.5))
    with pytest.raises(InvalidInputError) as error:
        activity_map_mbq(small_spec(organs=(KIDNEY, tiny)), 4.0)
    assert error.value.field == "tumour_1"


# --- blur and noise ------------------------------------------------------------------------------


def point_source() -> Volume:
    grid = Grid((33, 33, 33), (2.0, 2.0, 2.0), (-32.0, -32.0, -32.0))
    array = np.zeros(grid.shape)
    array[16, 16, 16] = 100.0
    return Volume(grid, array)


def test_blur_conserves_activity_and_has_the_requested_width() -> None:
    blurred_point = blurred(point_source(), 10.0)
    assert float(blurred_point.array.sum()) == pytest.approx(100.0, rel=1e-6)
    # FWHM 10 mm -> sigma = 10 / 2.35482 = 4.2466 mm; variance along x of the blurred point
    x_mm = (np.arange(33) - 16) * 2.0
    profile = blurred_point.array.sum(axis=(0, 1))
    variance = float((profile * x_mm**2).sum() / profile.sum())
    assert math.sqrt(variance) == pytest.approx(4.2466, rel=0.02)
    assert np.array_equal(blurred(point_source(), 0.0).array, point_source().array)
    with pytest.raises(InvalidInputError, match="fwhm_mm"):
        blurred(point_source(), -1.0)


def test_poisson_noise_is_reproducible_and_counts_based() -> None:
    grid = Grid((20, 20, 20), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    uniform = Volume(grid, np.full(grid.shape, 0.5))
    noisy = with_poisson_noise(uniform, 200.0, seed=1)
    assert np.array_equal(noisy.array, with_poisson_noise(uniform, 200.0, seed=1).array)
    assert not np.array_equal(noisy.array, with_poisson_noise(uniform, 200.0, seed=2).array)
    counts = noisy.array * 200.0
    assert np.allclose(counts, np.round(counts))
    # mean 100 counts per voxel: relative SD 1/sqrt(100) = 0.1; mean of 8000 voxels within 1 %
    assert float(noisy.array.mean()) == pytest.approx(0.5, rel=0.01)
    assert float(noisy.array.std()) == pytest.approx(0.05, rel=0.05)
    with pytest.raises(InvalidInputError, match="counts_per_mbq"):
        with_poisson_noise(uniform, 0.0, seed=1)

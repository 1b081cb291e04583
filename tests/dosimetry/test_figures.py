"""The dosimetry figures shared by `startrt dosimetry run` and the web: the slice through the
kidneys is at their fraction-weighted centre, and a voxel-method result gives all three PNGs."""

from __future__ import annotations

import numpy as np

from startrt.dosimetry.figures import dose_slices_figure, kidney_centre_index, png_bytes
from startrt.imaging.volume import Grid, Volume


def test_the_slices_go_through_the_kidneys_fraction_weighted_centre() -> None:
    masks = {name: np.zeros((5, 6, 12)) for name in ("left_kidney", "right_kidney", "liver")}
    masks["left_kidney"][2, 3, 4] = 1.0
    masks["right_kidney"][2, 3, 8] = 0.5
    masks["right_kidney"][4, 1, 8] = 0.5
    masks["liver"][0, 0, 0] = 1.0  # not a kidney: not counted
    # by hand: weights 1, 0.5, 0.5 at (2,3,4), (2,3,8), (4,1,8): z = (2+1+2)/2 = 2.5 -> 2
    # (round half to even), y = (3+1.5+0.5)/2 = 2.5 -> 2, x = (4+4+4)/2 = 6
    assert kidney_centre_index(masks) == (2, 2, 6)
    # no kidney: every VOI counts; an empty set: the middle voxel
    assert kidney_centre_index({"liver": masks["liver"]}) == (0, 0, 0)
    assert kidney_centre_index({"liver": np.zeros((5, 6, 12))}) == (2, 3, 6)


def test_the_dose_slices_figure_is_a_png_with_or_without_a_ct() -> None:
    grid = Grid((6, 5, 4), (4.0, 4.0, 5.0), (0.0, 0.0, 0.0))  # x, y, z; arrays are z, y, x
    dose = Volume(grid, np.arange(120, dtype=float).reshape(4, 5, 6) / 10.0)
    masks = {"left_kidney": (dose.array > 6.0).astype(float)}
    for background in (None, dose.with_array(np.full((4, 5, 6), 40.0))):
        figure = dose_slices_figure(dose, background, masks)
        titles = [axis.get_title() for axis in figure.axes]
        assert titles[:2] == [
            "axial slice through the kidneys",
            "coronal slice through the kidneys",
        ]
        assert figure.axes[2].get_ylabel() == "absorbed dose (Gy)"  # the colour bar
        assert png_bytes(figure).startswith(b"\x89PNG")

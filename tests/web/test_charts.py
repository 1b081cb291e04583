"""The shared SVG chart geometry (web/pages/charts.py), worked by hand."""

from __future__ import annotations

from datetime import date

from startrt.web.pages.charts import BarRow, add_months, bar_chart, month_ticks, nice_axis


def test_nice_axis() -> None:
    # 30 x 1.08 = 32.4: steps 1, 2, 5 need 33, 17, 7 ticks (> 6); 10 needs 4 -> top 40
    assert nice_axis(30) == (40.0, 10.0)
    # 324: 50 would need 7 steps; 100 needs 4
    assert nice_axis(300) == (400.0, 100.0)
    assert nice_axis(4) == (5.0, 1.0)  # 4.32 -> 5 steps of 1
    assert nice_axis(0) == (1.0, 1.0)


def test_month_ticks() -> None:
    # 2022-11 to 2026-12 spans 49 months: every 6 months gives 9 ticks, every 3 would give 17
    ticks = month_ticks(date(2022, 11, 1), date(2026, 12, 3))
    assert [f"{t:%Y-%m}" for t in ticks] == [
        "2022-11", "2023-05", "2023-11", "2024-05", "2024-11",
        "2025-05", "2025-11", "2026-05", "2026-11",
    ]  # fmt: skip
    assert month_ticks(date(2024, 1, 1), date(2024, 5, 20)) == tuple(
        date(2024, month, 1) for month in range(1, 6)
    )
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2023, 11, 1), 14) == date(2025, 1, 1)


def test_bar_chart_places_short_labels_beside_and_long_ones_above() -> None:
    short = bar_chart([("Lund", [BarRow("Screened", 7), BarRow("Eligible", 4)])], "Patients", "")
    # the label column: 16 px margin + 8 characters x 7.5 px + 8 px = 84 px; axis to 8 (4 x 2)
    assert short.left == 84
    assert [tick.text for tick in short.ticks] == ["0", "2", "4", "6", "8"]
    first, second = short.bars
    assert first.length == (660 - 84) * 7 / 8
    assert (first.label_anchor, first.label_x) == ("end", 76)
    assert second.y - first.y == 24
    assert short.headings[0].text == "Lund"
    long_label = "Histologically confirmed, well-differentiated, inoperable NET (inclusion)"
    above = bar_chart([("", [BarRow(long_label, 1)])], "Patients", "")
    (bar,) = above.bars
    assert above.left == 16
    assert (bar.label_anchor, bar.label_x) == ("start", 16)
    assert bar.label_y < bar.y  # the label's baseline above the bar's top

"""The enrolment dashboard in headless Debian Chromium: the monitor's and a Lund nurse's view of
the hand-countable trial of tests/web/test_enrolment.py, screenshots, axe-core's WCAG check, and
the figures' layout measured in the browser: every legend entry under the x axis' title (never
over a line) and apart from the others, every bar's label off its bar, no two texts of a
figure overlapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from startrt.web.trial.models import Site
from web.test_accessibility import BLOCKING_IMPACTS, axe_violations
from web.test_browser import Screenshots, chromium_page, sign_in, sign_out
from web.test_enrolment import people, trial  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Box = dict[str, float]

# the boxes of every text of each figure; of each accrual chart's legend, x-axis title and lines
BOXES = """() => {
  const box = (e) => { const b = e.getBoundingClientRect();
    return {x: b.left, y: b.top, right: b.right, bottom: b.bottom, text: e.textContent}; };
  const figures = {};
  for (const svg of document.querySelectorAll('main svg')) {
    figures[svg.id] = [...svg.querySelectorAll('text')].map(box);
  }
  const charts = ['accrual-chart', 'sites-accrual-chart'].map((id) => document.getElementById(id))
    .filter((chart) => chart !== null).map((chart) => ({
      legend: [...chart.querySelectorAll('.legend > g')].map(box),
      xTitle: box([...chart.querySelectorAll('.x-axis text')].pop()),
      lines: [...chart.querySelectorAll('polyline.line')].map(box),
    }));
  return {
    figures,
    charts,
    bars: [...document.querySelectorAll('g.bar')].map(
      (g) => ({label: box(g.querySelector('text')), bar: box(g.querySelector('rect'))})),
  };
}"""


def overlap(a: Box, b: Box) -> bool:
    return (
        a["x"] < b["right"]
        and b["x"] < a["right"]
        and a["y"] < b["bottom"]
        and b["y"] < a["bottom"]
    )


def check_layout(page: Page) -> None:
    measured = page.evaluate(BOXES)
    assert measured["charts"]
    for chart in measured["charts"]:
        for item in chart["legend"]:
            assert item["y"] >= chart["xTitle"]["bottom"], item
            assert all(item["y"] >= line["bottom"] - 0.5 for line in chart["lines"]), item
    for figure, texts in measured["figures"].items():
        for index, one in enumerate(texts):
            for other in texts[index + 1 :]:
                assert not overlap(one, other), (figure, one["text"], other["text"])
    for bar in measured["bars"]:
        assert not overlap(bar["label"], bar["bar"]), bar


def test_dashboard_in_the_browser(
    live_server: Any,
    flushable_audit_trail: None,
    trial: dict[str, User],  # noqa: F811
    sites: dict[str, Site],
    tmp_path: Path,
) -> None:
    base_url = live_server.url
    with chromium_page() as page:
        screenshots = Screenshots(page, tmp_path)
        violations = []
        sign_in(page, base_url, "monitor")
        page.click("header nav >> text=Enrolment")
        expect(page.locator("h1")).to_contain_text("Enrolment")
        expect(page.locator("#failure-count")).to_contain_text("3 patients not eligible")
        screenshots("enrolment_monitor")
        violations += axe_violations(page, "enrolment (monitor)")
        check_layout(page)
        assert len(page.evaluate(BOXES)["charts"]) == 2
        sign_out(page)

        sign_in(page, base_url, "nurse.lund")
        page.goto(f"{base_url}/enrolment/")
        expect(page.locator("#funnel")).to_contain_text("Lund")
        expect(page.locator("#funnel")).not_to_contain_text("Uppsala")
        screenshots("enrolment_nurse")
        violations += axe_violations(page, "enrolment (nurse)")
        check_layout(page)
    screenshots.check_written()
    blocking = [v for v in violations if v.impact in BLOCKING_IMPACTS]
    assert not blocking, "\n".join(str(v) for v in blocking)

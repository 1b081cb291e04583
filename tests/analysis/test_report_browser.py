"""The written report in headless Debian Chromium (Playwright): every figure is there and drawn,
and the first page shows the data cut-off and the protocol version; the PDF, rendered to PNG
pages with pypdfium2, has no blank page and the same first-page facts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import Page, sync_playwright

from startrt.analysis.report import TrialReport, build_report
from startrt.analysis.report_files import PDF_FILE, write_report
from support.datasets import report_dataset

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT = {"width": 1240, "height": 1754}  # A4 at 150 dpi: the first printed page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_written(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrialReport, Path]:
    out = tmp_path_factory.mktemp("report")
    report = build_report(report_dataset())
    write_report(report, out)
    return report, out


@pytest.fixture(scope="module")
def report_page(report_written: tuple[TrialReport, Path]) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    _, out = report_written
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            yield page
        finally:
            browser.close()


def test_every_figure_is_drawn(report_written: tuple[TrialReport, Path], report_page: Page) -> None:
    report, _ = report_written
    drawn = report_page.evaluate(
        """() => [...document.querySelectorAll('figure.report-figure')].map(figure => {
            const image = figure.querySelector('img, svg');
            const box = image ? image.getBoundingClientRect() : {width: 0, height: 0};
            return {
                name: figure.dataset.figure,
                tag: image ? image.tagName.toLowerCase() : null,
                natural: image && image.tagName === 'IMG' ? image.naturalWidth : null,
                complete: image && image.tagName === 'IMG' ? image.complete : true,
                width: box.width,
                height: box.height,
            };
        })"""
    )
    names = [figure["name"] for figure in drawn]
    assert names[0] == "consort"
    assert sorted(names[1:]) == sorted(figure.name for figure in report.figures)
    for figure in drawn:
        assert figure["width"] > 200, figure
        assert figure["height"] > 100, figure
        if figure["tag"] == "img":
            assert figure["complete"], figure
            assert figure["natural"] > 0, figure  # the SVG decoded
        else:
            assert figure["tag"] == "svg", figure


def test_first_page_has_cut_off_and_protocol(report_page: Page) -> None:
    for selector, text in (("#cut-off", "2025-12-31"), ("#protocol-version", "START-01 v1.0")):
        element = report_page.locator(selector)
        assert element.inner_text() == text
        box = element.bounding_box()
        assert box is not None
        assert box["y"] + box["height"] < VIEWPORT["height"]


def test_pdf_pages_are_not_blank(report_written: tuple[TrialReport, Path]) -> None:
    _, out = report_written
    document = pdfium.PdfDocument(out / PDF_FILE)
    assert len(document) >= 5
    for index in range(len(document)):
        image = document[index].render(scale=0.5).to_pil().convert("L")
        low, high = image.getextrema()
        assert high - low > 100, f"page {index + 1} is blank"
        image.save(out / f"page-{index + 1}.png")
    first = document[0].get_textpage().get_text_range()
    assert "2025-12-31" in first
    assert "START-01 v1.0" in first

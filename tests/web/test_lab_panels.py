"""Pre-cycle lab panels in the web: the eGFR computed from the patient's sex and age on the draw
date as soon as creatinine is entered (and the decision made on it), shown with its equations;
each site's reference ranges stored once, prefilled into the lab form, still editable per panel;
labels from `startrt.fields`; the pages in Chromium (screenshots, axe-core).

The test patient is a man aged 64 at screening (2025-03-03); labs drawn 2025-03-10 make him
64 + 7 / 365.25 = 64.02 years. LMR and CAPA at 64.02 years, worked by hand (the same
arithmetic at 64 years is written out in tests/clinical/test_egfr_lund_model.py):
  age term -0.0158 * 64.02 + 0.438 * ln 64.02 = -1.011516 + 0.438 * 4.1591955 = 0.8102116
  creatinine 95: X = 2.56 + 0.00968 * 85 = 3.3828; LMR = exp(4.1930116) = 66.2219 -> 66.2
  creatinine 150: X = 2.56 + 0.00968 * 30 = 2.8504; LMR = exp(3.6606116) = 38.8851 -> 38.9
  cystatin C 1.10: 130 * 1.10^-1.069 * 64.02^-0.117 - 7 = 130 * 0.9031320 * 0.6146969 - 7
      = 65.1698 -> 65.2; mean of LMR and CAPA (66.2219 + 65.1698) / 2 = 65.6959 -> 65.7
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from playwright.sync_api import expect

from startrt.validation import InvalidInputError
from startrt.web.treatment import lab_ranges, services
from startrt.web.treatment.lab_ranges import RangeEntry
from startrt.web.treatment.models import Cycle, LabPanel, SiteLabRange
from startrt.web.trial.models import AuditEntry, Patient
from web.test_accessibility import axe_violations
from web.test_browser import Screenshots, chromium_page, sign_in, sign_out
from web.test_pages_treatment import signed_in
from web.test_treatment import (
    FIRST_CYCLE,
    GOOD_LABS,
    Sites,
    Staff,
    at,
    planned_cycle,
    randomized,
    release,
)

DRAWN = at(FIRST_CYCLE - timedelta(7))  # 2025-03-10 09:00
COUNTS = {key: value for key, value in GOOD_LABS.items() if key != "measured_gfr_ml_min_173"}
PAGE = "/patients/S01-LUN-001/treatment"
CYCLE_PAGE = f"{PAGE}/cycles/1/"  # the cycle's page: its panels and its lab form


@pytest.fixture
def cycle(team: Staff, sites: Sites) -> Cycle:
    return planned_cycle(team, randomized(team, sites, 1))


def post_labs(client: Client, values: dict[str, Any]) -> Any:
    data = {"drawn_at": "2025-03-10 09:00", **{k: str(v) for k, v in values.items()}}
    return client.post(f"{PAGE}/cycles/1/labs/", data)


def latest_panel(patient: Patient) -> LabPanel:
    panel = LabPanel.objects.filter(patient=patient).order_by("pk").last()
    assert panel is not None
    return panel


# --- eGFR --------------------------------------------------------------------------------------


def test_creatinine_alone_completes_the_panel_and_the_cycle_is_released_on_its_lmr(
    team: Staff, cycle: Cycle
) -> None:
    nurse = signed_in(Client(), team["nurse"])
    assert post_labs(nurse, COUNTS).status_code == 302  # creatinine 85, no GFR measured
    panel = latest_panel(cycle.patient)
    inputs = panel.decision["inputs"]
    assert panel.decision["action"] == "go"
    assert (inputs["sex"], inputs["age_years"], inputs["gfr_source"]) == ("male", 64.02, "LMR")
    # creatinine 85: X = 2.56 + 0.00968 * 95 = 3.4796; exp(3.4796 + 0.8102116) = 72.9527
    assert inputs["gfr_ml_min_173"] == inputs["lmr_ml_min_173"] == 73.0
    gfr = next(c for c in panel.decision["conditions"] if c["id"] == "CY05")
    assert gfr["value"] == 73.0
    released = release(team["investigator"], Cycle.objects.get(pk=cycle.pk))
    assert released.released_by == "investigator.lund"


def test_a_high_creatinine_alone_delays_the_cycle(team: Staff, cycle: Cycle) -> None:
    values = {**COUNTS, "creatinine_umol_l": 150}
    panel = services.record_labs(team["nurse"], cycle.patient, values, drawn_at=DRAWN, cycle=cycle)
    assert panel.decision["action"] == "delay"
    assert panel.decision["inputs"]["gfr_ml_min_173"] == 38.9
    assert "GFR > 50" in panel.decision["reason"]
    with pytest.raises(InvalidInputError, match="only on a 'go'"):
        release(team["investigator"], cycle)


def test_both_markers_give_their_mean_shown_with_the_equations(team: Staff, cycle: Cycle) -> None:
    values = {**COUNTS, "creatinine_umol_l": 95, "cystatin_c_mg_l": 1.10}
    panel = services.record_labs(team["nurse"], cycle.patient, values, drawn_at=DRAWN, cycle=cycle)
    inputs = panel.decision["inputs"]
    assert (inputs["gfr_ml_min_173"], inputs["gfr_source"]) == (65.7, "mean of LMR and CAPA")
    assert (inputs["lmr_ml_min_173"], inputs["capa_ml_min_173"]) == (66.2, 65.2)
    html = signed_in(Client(), team["nurse"]).get(CYCLE_PAGE).content.decode()
    assert "eGFR 66 mL/min/1.73 m² (LMR 66, CAPA 65, mean)" in html


def test_a_measured_gfr_takes_precedence(team: Staff, cycle: Cycle) -> None:
    # LMR from creatinine 85 would be 73.0 (go); the measured 45 delays
    values = {**COUNTS, "measured_gfr_ml_min_173": 45}
    panel = services.record_labs(team["nurse"], cycle.patient, values, drawn_at=DRAWN, cycle=cycle)
    assert panel.decision["action"] == "delay"
    inputs = panel.decision["inputs"]
    assert (inputs["gfr_ml_min_173"], inputs["gfr_source"]) == (45, "measured")
    html = signed_in(Client(), team["nurse"]).get(CYCLE_PAGE).content.decode()
    assert "GFR 45 mL/min/1.73 m² (measured)" in html


def test_the_age_is_the_patients_not_the_forms(team: Staff, cycle: Cycle) -> None:
    with pytest.raises(InvalidInputError) as refused:
        services.record_labs(
            team["nurse"], cycle.patient, {**COUNTS, "age_years": 30}, drawn_at=DRAWN, cycle=cycle
        )
    assert refused.value.field == "age_years"


# --- labels ------------------------------------------------------------------------------------


def test_the_form_and_the_panel_read_labels_not_field_names(team: Staff, cycle: Cycle) -> None:
    services.record_labs(team["nurse"], cycle.patient, COUNTS, drawn_at=DRAWN, cycle=cycle)
    html = signed_in(Client(), team["nurse"]).get(CYCLE_PAGE).content.decode()
    assert '<label for="id_hemoglobin_g_l">Haemoglobin (g/L)</label>' in html
    assert re.search(r'aria-label="Haemoglobin LLN \(g/L\)"[^>]*id="id_hemoglobin_g_l_lln"', html)
    assert re.search(r'<label for="id_cystatin_c_mg_l">Cystatin C \(mg/L\):?</label>', html)
    # the panel: Hb 128 < LLN 134 -> grade 1
    assert "<td>Haemoglobin (g/L)</td><td>128</td><td>LLN 134</td><td>Anemia</td>" in html
    visible = re.sub(r"<[^>]+>", " ", html)  # the text people read, without the markup
    for name in ("hemoglobin_g_l", "creatinine_umol_l_uln", "measured_gfr_ml_min_173", "lln"):
        assert name not in visible


# --- site reference ranges ---------------------------------------------------------------------

RANGES = {
    "hemoglobin_g_l_lln": "117",
    "hemoglobin_g_l_uln": "170",
    "platelets_10e9_l_lln": "145",
    "creatinine_umol_l_uln": "100",
    "creatinine_umol_l_lln": "60",
}
LUND_RANGES = "/sites/LUN/lab-ranges/"


def test_an_investigator_sets_the_sites_ranges_and_the_form_is_prefilled(
    team: Staff, cycle: Cycle
) -> None:
    investigator = signed_in(Client(), team["investigator"])
    saved = investigator.post(LUND_RANGES, {"valid_from": date.today().isoformat(), **RANGES})
    assert (saved.status_code, saved["Location"]) == (302, LUND_RANGES)
    rows = {row.test: row for row in SiteLabRange.objects.filter(site__code="LUN")}
    assert set(rows) == {"hemoglobin_g_l", "platelets_10e9_l", "creatinine_umol_l"}
    assert (rows["hemoglobin_g_l"].lower_limit, rows["hemoglobin_g_l"].upper_limit) == (117, 170)
    assert (rows["hemoglobin_g_l"].unit, rows["hemoglobin_g_l"].set_by) == (
        "g/L",
        "investigator.lund",
    )
    audited = AuditEntry.objects.filter(table="treatment_sitelabrange", action="insert")
    assert audited.count() == 3
    page = investigator.get(LUND_RANGES).content.decode()
    assert "Saved 3 reference ranges" in page
    # the lab form of the planned cycle is prefilled with the limits graded against
    form = signed_in(Client(), team["nurse"]).get(CYCLE_PAGE).content.decode()
    for name, value in (("hemoglobin_g_l_lln", "117"), ("creatinine_umol_l_uln", "100")):
        assert re.search(rf'name="{name}" value="{value}(\.0)?"', form), name
    assert re.search(r'name="hemoglobin_g_l_uln"', form) is None  # not a panel limit
    # saving the same ranges again writes nothing
    investigator.post(LUND_RANGES, {"valid_from": date.today().isoformat(), **RANGES})
    assert SiteLabRange.objects.count() == 3


def test_the_prefilled_limit_is_editable_per_panel(team: Staff, cycle: Cycle) -> None:
    lab_ranges.set_lab_ranges(
        team["investigator"],
        cycle.patient.site,
        [RangeEntry("hemoglobin_g_l", 117.0, None)],
        valid_from=date.today(),
    )
    nurse = signed_in(Client(), team["nurse"])
    assert post_labs(nurse, {**COUNTS, "hemoglobin_g_l_lln": 134}).status_code == 302
    panel = latest_panel(cycle.patient)
    assert panel.values["hemoglobin_g_l_lln"] == 134  # as entered on the panel, not 117
    assert panel.grades["hemoglobin_g_l"]["grade"] == 1  # 128 < 134


def test_who_may_see_and_set_the_ranges(team: Staff, staff: Staff, cycle: Cycle) -> None:
    data = {"valid_from": date.today().isoformat(), **RANGES}
    nurse = signed_in(Client(), team["nurse"])
    assert nurse.get(LUND_RANGES).status_code == 200  # reads them
    assert nurse.post(LUND_RANGES, data).status_code == 403
    monitor = signed_in(Client(), staff["monitor"])
    assert monitor.get(LUND_RANGES).status_code == 200
    assert monitor.post(LUND_RANGES, data).status_code == 403
    assert signed_in(Client(), staff["uppsala"]).get(LUND_RANGES).status_code == 404
    assert not SiteLabRange.objects.exists()
    with pytest.raises(PermissionDenied):
        lab_ranges.set_lab_ranges(
            team["nurse"],
            cycle.patient.site,
            [RangeEntry("hemoglobin_g_l", 117.0, None)],
            valid_from=date.today(),
        )


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (RangeEntry("hemoglobin_g_l", 13.4, None), "hemoglobin_g_l_lln"),  # g/dL, not g/L
        (RangeEntry("hemoglobin_g_l", None, 170.0), "hemoglobin_g_l_lln"),  # graded against LLN
        (RangeEntry("creatinine_umol_l", 120.0, 100.0), "creatinine_umol_l_lln"),  # above ULN
        (RangeEntry("sodium_mmol_l", 135.0, 145.0), "test"),
    ],
)
def test_implausible_ranges_are_refused(
    team: Staff, sites: Sites, entry: RangeEntry, field: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        lab_ranges.set_lab_ranges(
            team["investigator"], sites["Lund"], [entry], valid_from=date.today()
        )
    assert refused.value.field == field
    assert not SiteLabRange.objects.exists()


def test_a_refused_range_is_shown_beside_its_field(team: Staff, sites: Sites) -> None:
    page = signed_in(Client(), team["investigator"]).post(
        LUND_RANGES, {"valid_from": date.today().isoformat(), "hemoglobin_g_l_lln": "13.4"}
    )
    assert page.status_code == 422
    assert "must lie in [80, 200] g/L" in page.content.decode()
    assert not SiteLabRange.objects.exists()


def test_the_range_in_force_is_the_latest_from_before_the_day(team: Staff, sites: Sites) -> None:
    lund, today = sites["Lund"], date.today()

    def set_hb(lln: float, day: date) -> None:
        entry = RangeEntry("hemoglobin_g_l", lln, None)
        lab_ranges.set_lab_ranges(team["investigator"], lund, [entry], valid_from=day)

    set_hb(120, today - timedelta(30))
    set_hb(117, today - timedelta(1))
    set_hb(110, today + timedelta(10))  # announced, not yet in force
    assert lab_ranges.panel_limits(lund, today) == {"hemoglobin_g_l_lln": 117}
    assert lab_ranges.panel_limits(lund, today + timedelta(10)) == {"hemoglobin_g_l_lln": 110}
    assert lab_ranges.panel_limits(lund, today - timedelta(31)) == {}
    # the same day again replaces that day's range, audited as a change with its reason
    set_hb(118, today - timedelta(1))
    assert lab_ranges.panel_limits(lund, today) == {"hemoglobin_g_l_lln": 118}
    change = AuditEntry.objects.get(table="treatment_sitelabrange", action="update")
    assert (change.old["lower_limit"], change.new["lower_limit"]) == (117, 118)
    assert "Haemoglobin range in force from" in change.reason
    assert SiteLabRange.objects.count() == 3


# --- in Chromium ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_ranges_prefill_the_form_and_the_panel_shows_its_egfr(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    planned_cycle(team, randomized(team, sites, 1))
    base_url = live_server.url
    otp_key = team["investigator"].otp_device.bin_key  # type: ignore[attr-defined]
    ranges = {
        "hemoglobin_g_l_lln": "117",
        "hemoglobin_g_l_uln": "170",
        "platelets_10e9_l_lln": "145",
        "leukocytes_10e9_l_lln": "3.5",
        "neutrophils_10e9_l_lln": "1.6",
        "creatinine_umol_l_lln": "60",
        "creatinine_umol_l_uln": "100",
    }
    with chromium_page() as page:
        screenshot = Screenshots(page, tmp_path)
        sign_in(page, base_url, "investigator.lund", otp_key)
        page.goto(f"{base_url}{LUND_RANGES}")
        for name, value in ranges.items():
            page.fill(f"[name={name}]", value)
        page.click("button[name=save_ranges]")
        expect(page.locator("#messages")).to_have_text("Saved 5 reference ranges")
        screenshot("lab_ranges")
        found = axe_violations(page, "lab ranges")
        sign_out(page)

        sign_in(page, base_url, "nurse.lund")
        page.goto(f"{base_url}{CYCLE_PAGE}")
        expect(page.locator("form.labs [name=hemoglobin_g_l_lln]")).to_have_value(
            re.compile(r"^117(\.0)?$")
        )
        expect(page.locator("form.labs [name=creatinine_umol_l_uln]")).to_have_value(
            re.compile(r"^100(\.0)?$")
        )
        screenshot("lab_form_prefilled")
        found += axe_violations(page, "lab form")
        values = {
            "drawn_at": "2025-03-10 09:00",
            "hemoglobin_g_l": "128",
            "platelets_10e9_l": "210",
            "leukocytes_10e9_l": "5.9",
            "neutrophils_10e9_l": "3.4",
            "creatinine_umol_l": "95",
            "cystatin_c_mg_l": "1.10",
        }
        for name, value in values.items():
            page.fill(f"form.labs [name={name}]", value)
        page.click("form.labs button[name=labs]")
        expect(page.locator(".gfr").first).to_have_text(
            "eGFR 66 mL/min/1.73 m² (LMR 66, CAPA 65, mean)"
        )
        expect(page.locator(".decision-go").first).to_have_text("go")
        screenshot("lab_panel")
        found += axe_violations(page, "lab panel")
    screenshot.check_written()
    assert [str(v) for v in found if v.impact in {"serious", "critical"}] == []

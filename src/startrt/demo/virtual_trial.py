"""A simulated trial entered into the database through the services, as the four sites would
enter it: what `make demo` shows in the browser.

Each virtual patient of `simulation.simulate_trial` is registered, consented and screened with
the screening record the simulation judged (the services judge it again and must agree), and,
if eligible, randomized from the list the simulation drew (so the allocation must agree too).
The treatment course is then the clinic's own: the planner proposes each cycle from the doses
recorded so far, the physicist accepts, labs are drawn, the investigator signs the release,
the nurse records the administration and the physicist the dosimetry, with the virtual
patient's kidney and marrow Gy per GBq (or, for the first patients, doses computed from a
generated SPECT/CT phantom study). A patient gets at most as many cycles as in the simulation
(which stopped for progression, death, labs or the limit) and none after the cut-off. Adverse
events, tumour assessments (entered as lesion measurements, `simulation.lesions`), follow-up,
deaths and ends of treatment come from the simulated dataset on their dates.

Every entry happens at its date in the trial: `clock(moment)` must make the services see that
moment as now (the demo travels in time). Known simplification: the pre-cycle panel repeats
the screening values (always "go"); the simulated laboratory results are entered as panels of
their own on their dates.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import User
from django.test import RequestFactory

from startrt.clinical.ctcae import LabTerm
from startrt.imaging.phantom_study import make_phantom_study
from startrt.protocol.capecitabine import gives_capecitabine
from startrt.protocol.definition import Protocol
from startrt.protocol.vocabulary import PrimarySite
from startrt.simulation.course import TERMS
from startrt.simulation.lesions import recist_series
from startrt.simulation.parameters import Parameters
from startrt.simulation.population import screening_record
from startrt.simulation.trial import TrialRun
from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import Death, EndOfTreatment
from startrt.web.treatment import capecitabine, services
from startrt.web.treatment.changes import treatment_arm
from startrt.web.treatment.lab_grades import GRADED_LABS
from startrt.web.treatment.models import Cycle
from startrt.web.trial import services as trial
from startrt.web.trial.models import Patient, Site

Clock = Callable[[datetime], AbstractContextManager[Any]]
Steps = Iterator[datetime]
FIELD_OF_TERM = {
    **{term.ctcae_term: field for field, (term, _side) in GRADED_LABS.items()},
    LabTerm.EGFR.value: "measured_gfr_ml_min_173",  # the simulation's GFR is measured
}
# Primary site and Ki-67 (%) of the demo's patients, dealt in turn (the virtual population draws
# neither; no criterion reads them): mostly small-intestinal and pancreatic G1-G2 NETs, as in
# PRRT trials (NETTER-1: midgut; COMPETE: GEP-NET), a few G3 and other sites.
DEMO_TUMOURS: tuple[tuple[PrimarySite, float], ...] = (
    (PrimarySite.SMALL_INTESTINE, 2.0),
    (PrimarySite.PANCREAS, 8.0),
    (PrimarySite.SMALL_INTESTINE, 5.0),
    (PrimarySite.PANCREAS, 15.0),
    (PrimarySite.COLON_RECTUM, 3.5),
    (PrimarySite.SMALL_INTESTINE, 1.0),
    (PrimarySite.UNKNOWN_PRIMARY, 12.0),
    (PrimarySite.PANCREAS, 25.0),
    (PrimarySite.LUNG, 4.0),
    (PrimarySite.STOMACH_DUODENUM, 2.5),
)


@dataclass(frozen=True)
class SiteTeam:
    """The users of one site who enter its patients."""

    nurse: User
    investigator: User
    physicist: User
    pharmacist: User


@dataclass(frozen=True)
class Enrolment:
    """What was entered: patients screened and randomized, cycles given, computed studies."""

    screened: int
    randomized: int
    cycles: int
    computed_studies: int


def enter_simulated_trial(
    run: TrialRun,
    parameters: Parameters,
    protocol: Protocol,
    teams: dict[str, SiteTeam],
    statistician: User,
    password: str,
    clock: Clock,
    *,
    phantom_studies: int = 2,
) -> Enrolment:
    """Enter `run` (see the module docstring); returns the counts entered."""
    if run.randomization_list is None:
        raise InvalidInputError(
            "protocol.randomization.method", "minimization", "only a block-list trial is entered"
        )
    entry = _Entry(run, parameters, protocol, teams, password, phantom_studies)
    with clock(_moment(protocol.effective_date, 8)):
        entry.load_list(statistician)
    queue: list[tuple[datetime, int, Steps]] = []
    order = itertools.count()
    for steps in entry.patients():
        _push(queue, order, steps)
    while queue:
        moment, _, steps = heapq.heappop(queue)
        with clock(moment):
            _push(queue, order, steps)
    return entry.enrolment()


def lower_limits(parameters: Parameters) -> dict[str, float]:
    """The simulation's LLN of each graded blood count, by lab-panel field."""
    return {
        f"{FIELD_OF_TERM[term.ctcae_term]}_lln": parameters.haematology.term(term.value).lln
        for term in TERMS
        if term.ctcae_term in FIELD_OF_TERM
    }


def _push(queue: list[tuple[datetime, int, Steps]], order: Iterator[int], steps: Steps) -> None:
    """Run `steps` to its next wish to act at a later moment and queue it there."""
    moment = next(steps, None)
    if moment is not None:
        heapq.heappush(queue, (moment, next(order), steps))


def _moment(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


class _Entry:
    """The entry of one simulated trial, a generator of timed steps per patient."""

    def __init__(
        self,
        run: TrialRun,
        parameters: Parameters,
        protocol: Protocol,
        teams: dict[str, SiteTeam],
        password: str,
        phantom_studies: int,
    ) -> None:
        self.run, self.protocol, self.teams, self.password = run, protocol, teams, password
        self.dataset = run.dataset
        self.lower_limits = lower_limits(parameters)
        self.first_cycle_after = timedelta(days=parameters.trial.randomization_to_first_cycle_days)
        self.phantoms_left = phantom_studies
        self.numbers: dict[str, int] = {}
        self.counts = {"screened": 0, "randomized": 0, "cycles": 0, "studies": 0}

    def enrolment(self) -> Enrolment:
        c = self.counts
        return Enrolment(c["screened"], c["randomized"], c["cycles"], c["studies"])

    def load_list(self, statistician: User) -> None:
        """The randomization list the simulation drew, loaded as the trial's concealed list."""
        listing = self.run.randomization_list
        assert listing is not None  # checked by enter_simulated_trial
        trial.load_randomization_list(statistician, Site.objects.first(), "START-01", listing)

    def patients(self) -> Iterator[Steps]:
        for index, row in enumerate(self.dataset.patients.itertuples(index=False)):
            yield self._patient(index, row)

    def _rows(self, table: str, sim_id: str) -> pd.DataFrame:
        frame = self.dataset.table(table)
        return frame[frame["trial_id"] == sim_id]

    def _trial_id(self, site: Site) -> str:
        number = self.numbers.get(site.code, 0) + 1
        self.numbers[site.code] = number
        return f"S01-{site.code}-{number:03d}"

    def _patient(self, index: int, row: Any) -> Steps:
        screened_on = row.screened_on.date()
        yield _moment(screened_on, 9)
        site = Site.objects.get(name=row.site)
        team = self.teams[row.site]
        record = screening_record(self.run.screening.candidates, index, screened_on)
        patient = trial.register_patient(team.nurse, site, self._trial_id(site), record.sex)
        trial.record_consent(
            team.nurse, patient, {"form_version": "1.0", "signed_on": screened_on.isoformat()}
        )
        data = record.model_dump(mode="json", exclude_none=True)
        site_of_tumour, ki67_percent = DEMO_TUMOURS[index % len(DEMO_TUMOURS)]
        data |= {"primary_site": str(site_of_tumour), "ki67_percent": ki67_percent}
        if not pd.isna(row.randomized_on):
            planned_start = row.randomized_on.date() + self.first_cycle_after
            data["planned_start_date"] = planned_start.isoformat()
        screening = trial.record_screening(team.nurse, patient, data)
        self.counts["screened"] += 1
        if bool(screening.eligible) != bool(row.eligible):
            raise InvalidInputError(patient.trial_id, screening.eligible, "simulation disagrees")
        if pd.isna(row.randomized_on):
            return
        yield _moment(row.randomized_on.date(), 10)
        slot = trial.randomize(team.investigator, patient)
        if slot.arm != row.arm:
            raise InvalidInputError(patient.trial_id, slot.arm, f"simulation allocated {row.arm}")
        self.counts["randomized"] += 1
        yield from _Course(self, patient, team, row.trial_id, record.model_dump()).steps()


class _Course:
    """One randomized patient's treatment and events, step by step in date order."""

    def __init__(
        self, entry: _Entry, patient: Patient, team: SiteTeam, sim_id: str, record: dict[str, Any]
    ) -> None:
        self.entry, self.patient, self.team, self.record = entry, patient, team, record
        self.simulated = entry.run.cycles[entry.run.cycles["trial_id"] == sim_id]
        self.events = sorted(self._events(sim_id), key=lambda event: event[0])
        self.cut_off = entry.dataset.cut_off

    def steps(self) -> Steps:
        now = datetime.now(UTC) + timedelta(hours=1)
        for number in range(1, len(self.simulated) + 1):
            yield from self._events_until(now)
            if Death.objects.filter(patient=self.patient).exists():
                break
            if EndOfTreatment.objects.filter(patient=self.patient).exists():
                break
            yield now
            proposal = services.propose_next_cycle(self.team.physicist, self.patient)
            if proposal.plan["action"] == "stop":
                break
            services.accept_proposal(self.team.physicist, proposal, expected_version=1)
            cycle = Cycle.objects.get(patient=self.patient, number=number)
            if cycle.planned_date > self.cut_off:
                break
            yield from self._events_until(_moment(cycle.planned_date, 8))
            if Death.objects.filter(patient=self.patient).exists():
                break
            now = yield from self._give(cycle, self.simulated.iloc[number - 1])
        yield from self._events_until(_moment(self.cut_off, 23))

    def _give(self, cycle: Cycle, simulated: Any) -> Iterator[datetime]:
        planned = cycle.planned_date
        team = self.team
        yield _moment(planned - timedelta(days=3), 8)
        services.record_labs(
            team.nurse,
            self.patient,
            self._pre_cycle_labs(),
            drawn_at=datetime.now(UTC),
            cycle=cycle,
        )
        arm = treatment_arm(self.patient).id
        if gives_capecitabine(arm, cycle.number, self.entry.protocol):
            yield _moment(planned - timedelta(days=2), 11)
            prescription = capecitabine.prescribe_capecitabine(
                team.investigator,
                cycle,
                weight_kg=self.record["weight_kg"],
                height_cm=self.record["height_cm"],
                age_years=self.record["age_years"],
                creatinine_umol_l=self.record["creatinine_umol_l"],
            )
            tablets = capecitabine.prescribed_tablets(prescription)
            capecitabine.dispense(
                team.pharmacist, prescription, tablets_500=tablets[500], tablets_150=tablets[150]
            )
        yield _moment(planned - timedelta(days=1), 14)
        request = RequestFactory().post("/", REMOTE_ADDR="127.0.0.1")
        request.user = team.investigator
        cycle = services.release_cycle(
            request, cycle, password=self.entry.password, expected_version=cycle.version
        )
        start = _moment(planned, 9)
        yield start + timedelta(hours=1)
        cycle = services.record_administration(
            team.nurse,
            cycle,
            activity_gbq=cycle.planned_activity_gbq,
            lot=f"LU-{planned:%y%m}-{cycle.number:02d}",
            infusion_start=start,
            infusion_end=start + timedelta(minutes=30),
            inpatient_days=1,
            expected_version=cycle.version,
        )
        self.entry.counts["cycles"] += 1
        study = self._phantom_study(cycle, start) if cycle.number == 1 else None
        done = _moment(planned + timedelta(days=7), 15)
        yield done
        if study is not None:
            services.record_dosimetry(team.physicist, cycle, study_path=study)
            self.entry.counts["studies"] += 1
        else:
            activity = cycle.administered_activity_gbq
            kidney_gy = simulated.kidney_gy_measured / simulated.activity_gbq * activity
            services.record_dosimetry(
                team.physicist,
                cycle,
                left_kidney_dose_gy=round(kidney_gy * 0.95, 3),
                right_kidney_dose_gy=round(kidney_gy * 1.05, 3),
                marrow_dose_gy=round(simulated.marrow_gy / simulated.activity_gbq * activity, 4),
                imaging_sessions=len(self.entry.protocol.schedule.dosimetry_imaging_hours),
            )
        return done + timedelta(hours=1)

    def _phantom_study(self, cycle: Cycle, injected: datetime) -> str | None:
        """For the first patients: a generated SPECT/CT study of the cycle (64^3 phantom)."""
        if self.entry.phantoms_left <= 0:
            return None
        self.entry.phantoms_left -= 1
        relative = f"{self.patient.trial_id}/cycle-{cycle.number}"
        folder = Path(settings.DATA_DIR) / "studies" / relative
        make_phantom_study(
            folder,
            seed=self.entry.phantoms_left,
            grid_size=64,
            ct_subdivision=2,
            injection_datetime=injected.replace(tzinfo=None),
            patient_id=self.patient.trial_id,  # computed_doses matches it to the patient
        )
        return relative

    def _pre_cycle_labs(self) -> dict[str, Any]:
        """The screening's blood counts and GFR (the simplification stated), with the LLNs."""
        values = {
            field: self.record[field]
            for field in (
                "hemoglobin_g_l",
                "platelets_10e9_l",
                "leukocytes_10e9_l",
                "neutrophils_10e9_l",
                "measured_gfr_ml_min_173",
            )
        }
        return {**values, **self._limits(values)}

    def _limits(self, values: dict[str, Any]) -> dict[str, float]:
        limits = self.entry.lower_limits
        return {f"{f}_lln": limits[f"{f}_lln"] for f in values if f"{f}_lln" in limits}

    # dated events of the simulated dataset ---------------------------------------------------

    def _events_until(self, moment: datetime) -> Iterator[datetime]:
        while self.events and self.events[0][0] <= moment:
            at, enter = self.events.pop(0)
            yield at
            enter()

    def _events(self, sim_id: str) -> Iterator[tuple[datetime, Callable[[], Any]]]:
        entry, patient, nurse = self.entry, self.patient, self.team.nurse
        arm = treatment_arm(patient)
        for ae in entry._rows("adverse_events", sim_id).itertuples(index=False):
            data = {
                "term": ae.term,
                "ctcae_grade": int(ae.grade),
                "onset_date": ae.onset_on.date().isoformat(),
                "serious": bool(ae.serious),
                "seriousness_criteria": ["hospitalisation"] if ae.serious else [],
                "attribution_prrt": "possible",
                "attribution_capecitabine": "possible" if arm.capecitabine else "not_applicable",
                "outcome": "recovering",
            }
            yield (
                _moment(ae.onset_on.date(), 16),
                _call(events.report_adverse_event, nurse, patient, data),
            )
        responses: list[tuple[date, str]] = []
        baseline = self.record["screening_date"]
        for a in entry._rows("assessments", sim_id).itertuples(index=False):
            responses.append((a.assessed_on.date(), a.response))
            series = recist_series(baseline, list(responses))
            yield (
                _moment(a.assessed_on.date(), 13),
                _call(events.record_tumour_assessment, nurse, patient, series),
            )
        yield from self._lab_panels(sim_id)
        for d in entry._rows("deaths", sim_id).itertuples(index=False):
            data = {
                "date": d.died_on.date().isoformat(),
                "cause": d.cause or "unknown",
                "related_to_treatment": False,
            }
            yield (
                _moment(d.died_on.date(), 17),
                _call(events.record_death, self.team.investigator, patient, data),
            )
        for f in entry._rows("follow_up", sim_id).itertuples(index=False):
            progressed = not pd.isna(f.progression_on)
            data = {
                "date": f.contact_on.date().isoformat(),
                "status": f.status,
                "progression": progressed,
                "progression_date": f.progression_on.date().isoformat() if progressed else None,
            }
            yield (
                _moment(f.contact_on.date(), 18),
                _call(events.record_follow_up, nurse, patient, data),
            )
        for e in entry._rows("end_of_treatment", sim_id).itertuples(index=False):
            data = {"date": e.ended_on.date().isoformat(), "reason": e.reason}
            yield (
                _moment(e.ended_on.date(), 16, 30),
                _call(events.record_end_of_treatment, self.team.investigator, patient, data),
            )

    def _lab_panels(self, sim_id: str) -> Iterator[tuple[datetime, Callable[[], Any]]]:
        """The simulated laboratory results of a day as one panel (the terms a panel holds)."""
        labs = self.entry._rows("labs", sim_id)
        graded = labs[labs["term"].isin(list(FIELD_OF_TERM))]
        for day, rows in graded.groupby("drawn_on"):
            values = {FIELD_OF_TERM[row.term]: row.value for row in rows.itertuples(index=False)}
            values.update(self._limits(values))
            moment = _moment(day.date(), 7, 30)
            yield (
                moment,
                _call(services.record_labs, self.team.nurse, self.patient, values, drawn_at=moment),
            )


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(*args, **kwargs)

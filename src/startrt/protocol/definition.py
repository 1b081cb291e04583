"""The protocol as data: a versioned TOML file validated on load into frozen pydantic models.

A protocol amendment is a new file (e.g. START-01_v1.1.toml), never a code change. Every
parameter the rules read (activity per cycle, renal limit, windows, capecitabine regimen,
eligibility thresholds) lives in the file.

Which version applies: every file has an `effective_date`, and the files shipped in
`startrt.protocol.files` form a registry (`ProtocolVersions`). A decision applies the version
in force on the date it is made (`protocol_in_force(on)`: the latest version effective on or
before that date), for every patient alike: an amendment applies to ongoing patients from its
effective date, and a decision made before it keeps the version it names. A date before the
first version (the trial start) has no version in force and is refused. Callers with no date
(the command line, the simulation, exports) use `default_protocol()`, the version in force today.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from startrt.protocol.accrual import AccrualPlan
from startrt.protocol.concomitant_therapy import ConcomitantTherapySettings
from startrt.protocol.criteria import Criterion
from startrt.protocol.expected_forms import ExpectedFormSettings
from startrt.protocol.safety_reporting import SafetyReporting
from startrt.protocol.schedule import ScheduleSettings
from startrt.protocol.screening import CYCLE_LAB_FIELDS, SCREENING_FIELDS
from startrt.validation import InvalidInputError

PROTOCOL_PACKAGE = "startrt.protocol.files"
PROTOCOL_FOLDER: Traversable = resources.files(PROTOCOL_PACKAGE)
"""The shipped protocol files: every *.toml in it is a version in the registry."""


class ProtocolFileError(ValueError):
    """A protocol file that cannot be read or does not validate; names the file and each field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Arm(_Frozen):
    """A treatment arm; `randomized_arm` is the allocation it belongs to."""

    id: str
    label: str
    randomized_arm: str
    dosimetry_guided: bool
    capecitabine: bool
    fixed_cycles: int | None = Field(default=None, ge=1, le=20)

    @model_validator(mode="after")
    def _fixed_cycles_iff_not_guided(self) -> Arm:
        if self.dosimetry_guided == (self.fixed_cycles is not None):
            raise ValueError(
                f"arm {self.id}: fixed_cycles is required for an arm without dosimetry guidance "
                "and not allowed for a dosimetry-guided arm"
            )
        return self


class Treatment(_Frozen):
    nuclide: str
    activity_per_cycle_gbq: float = Field(gt=0, le=15)
    minimum_activity_gbq: float = Field(gt=0, le=15)
    activity_step_gbq: float = Field(gt=0, le=1)
    max_personalized_cycles: int | None = Field(default=None, ge=1, le=20)
    max_cycle_delay_weeks: float = Field(ge=0, le=52)

    @model_validator(mode="after")
    def _minimum_below_full(self) -> Treatment:
        if self.minimum_activity_gbq > self.activity_per_cycle_gbq:
            raise ValueError("minimum_activity_gbq must not exceed activity_per_cycle_gbq")
        return self


# the kidney a renal limit applies to: the mean of both, left, right, or the worse one
Kidney = Literal["mean", "left", "right", "worse"]


class RenalLimit(_Frozen):
    """Cumulative kidney limit: absorbed dose (AD) or BED, applied to the kidney it names."""

    quantity: Literal["AD", "BED"]
    limit_gy: float = Field(gt=0, le=100)
    kidney: Kidney
    alpha_beta_gy: float = Field(gt=0, le=20)
    repair_half_time_h: float = Field(gt=0, le=24)
    # the next cycle's kidney Gy/GBq is predicted as the latest x (1 + this)
    kidney_gy_per_gbq_rise_per_cycle: float = Field(default=0.0, ge=0, le=0.5)
    # a measured kidney Gy/GBq outside this range is not planned from: dosimetry is needed
    plausible_kidney_gy_per_gbq: tuple[float, float] = (0.02, 5.0)
    # optional: the next activity keeps P(true cumulative AD > limit) at or under this, by the
    # kidney-dose model (protocol/kidney_dose_prediction.py); absent: the deterministic rule only
    max_probability_over_limit: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _plausible_range(self) -> RenalLimit:
        low, high = self.plausible_kidney_gy_per_gbq
        if not 0 < low < high:
            raise ValueError(f"plausible_kidney_gy_per_gbq must be 0 < low < high: {low}, {high}")
        if self.max_probability_over_limit is not None and self.quantity != "AD":
            raise ValueError("max_probability_over_limit needs an absorbed-dose (AD) limit")
        return self


class MarrowLimit(_Frozen):
    limit_gy: float = Field(gt=0, le=10)


class GfrSettings(_Frozen):
    """LMR/CAPA agreement: relative difference above which the mean is flagged (Lund model)."""

    agreement_threshold: float = Field(gt=0, le=1)


class CapecitabineSettings(_Frozen):
    dose_mg_per_m2: float = Field(gt=0, le=2500)
    bsa_formula: Literal["dubois", "mosteller"]
    reduce_for_moderate_renal_impairment: bool


class AssessmentSettings(_Frozen):
    """Tumour assessments (RECIST 1.1 imaging) every `interval_weeks` from randomization."""

    interval_weeks: int = Field(strict=True, ge=2, le=52)

    @property
    def interval_days(self) -> int:
        return 7 * self.interval_weeks


class ArmAssignmentSettings(_Frozen):
    """Which treatment arm the personalized allocation becomes, from the FDG-PET result."""

    personalized_arm: str
    fdg_negative_arm: str
    fdg_positive_arm: str


class RandomizationSettings(_Frozen):
    method: Literal["permuted_blocks", "minimization"]
    arms: tuple[str, ...] = Field(min_length=2)
    ratio: tuple[int, ...]
    block_sizes: tuple[int, ...] = Field(min_length=1)
    strata: tuple[Literal["site", "fdg"], ...]
    minimization_p_best: float = Field(gt=0.5, le=1)

    @model_validator(mode="after")
    def _ratio_matches_arms(self) -> RandomizationSettings:
        if len(self.ratio) != len(self.arms) or min(self.ratio) < 1:
            raise ValueError("ratio needs one positive integer per arm")
        unit = sum(self.ratio)
        if any(size % unit for size in self.block_sizes):
            raise ValueError(f"block_sizes must be multiples of sum(ratio) = {unit}")
        return self


class Eligibility(_Frozen):
    inclusion: tuple[Criterion, ...] = Field(min_length=1)
    exclusion: tuple[Criterion, ...]


class CycleCondition(Criterion):
    """A pre-cycle laboratory condition; when not met the cycle is delayed or treatment stops."""

    on_fail: Literal["delay", "stop"]


def _require_known_fields(criteria: tuple[Criterion, ...], known: frozenset[str]) -> None:
    for criterion in criteria:
        for name in (criterion.field, criterion.applies_if):
            if name is not None and name not in known:
                raise ValueError(f"criterion {criterion.id}: unknown field {name!r}")


class Protocol(_Frozen):
    """A validated protocol version."""

    schema_version: Literal["startrt-protocol/1"] = Field(alias="schema")
    id: str
    version: str
    title: str
    registrations: tuple[str, ...]
    # a TOML date (2022-11-01, not a string or a date-time): the first day decisions apply it
    effective_date: date = Field(strict=True)
    sites: tuple[str, ...] = Field(min_length=1)
    # [site_time_zones]: each site's IANA time zone, for the times people read; a site not
    # named (or a file without the table) reads UTC
    site_time_zones: dict[str, str] = Field(default_factory=dict)
    arms: tuple[Arm, ...] = Field(min_length=2)
    treatment: Treatment
    renal_limit: RenalLimit
    marrow_limit: MarrowLimit | None = None
    gfr: GfrSettings
    capecitabine: CapecitabineSettings
    schedule: ScheduleSettings
    assessments: AssessmentSettings
    arm_assignment: ArmAssignmentSettings
    randomization: RandomizationSettings
    eligibility: Eligibility
    cycle_conditions: tuple[CycleCondition, ...]
    expected_forms: ExpectedFormSettings
    # [accrual]: the accrual plan (protocol/accrual.py); a file without it has no plan
    accrual: AccrualPlan | None = None
    # [concomitant_therapy]: the prohibited therapies by ATC code (protocol/concomitant_therapy.py);
    # a file without it cannot check concomitant medications (entry refused)
    concomitant_therapy: ConcomitantTherapySettings | None = None
    # [safety_reporting]: SAE report clock, SUSAR rule and reference safety information
    # (protocol/safety_reporting.py); a file without it cannot take SAE reports (refused)
    safety_reporting: SafetyReporting | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Protocol:
        arm_ids = [arm.id for arm in self.arms]
        if len(set(arm_ids)) != len(arm_ids):
            raise ValueError(f"arm ids must be unique: {arm_ids}")
        for arm in self.arms:
            if arm.randomized_arm not in self.randomization.arms:
                raise ValueError(
                    f"arm {arm.id}: randomized_arm {arm.randomized_arm!r} is not one of "
                    f"randomization.arms {list(self.randomization.arms)}"
                )
        assignment = self.arm_assignment
        for name in (assignment.fdg_negative_arm, assignment.fdg_positive_arm):
            if name not in arm_ids:
                raise ValueError(f"arm_assignment names unknown arm {name!r}")
        if assignment.personalized_arm not in self.randomization.arms:
            raise ValueError(f"arm_assignment.personalized_arm {assignment.personalized_arm!r}")
        for site, zone in self.site_time_zones.items():
            if site not in self.sites:
                raise ValueError(f"site_time_zones names {site!r}, not one of sites")
            _zone(site, zone)
        ids = [c.id for c in (*self.eligibility.inclusion, *self.eligibility.exclusion)]
        ids += [c.id for c in self.cycle_conditions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"criterion ids must be unique; repeated: {duplicates}")
        _require_known_fields(
            (*self.eligibility.inclusion, *self.eligibility.exclusion), SCREENING_FIELDS
        )
        _require_known_fields(self.cycle_conditions, CYCLE_LAB_FIELDS)
        if self.accrual is not None:
            self.accrual.check_sites(self.sites)
        return self

    @property
    def label(self) -> str:
        """'START-01 v1.0': how decisions name the protocol version they applied."""
        return f"{self.id} v{self.version}"

    def time_zone(self, site: str) -> ZoneInfo:
        """The site's time zone (UTC when the file names none); an unknown site is refused."""
        if site not in self.sites:
            raise InvalidInputError("site", site, f"not a site of {self.label}")
        return _zone(site, self.site_time_zones.get(site, "UTC"))

    def arm(self, arm_id: str) -> Arm:
        """The arm with this id; an unknown id raises InvalidInputError listing the known ones."""
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        known = ", ".join(a.id for a in self.arms)
        raise InvalidInputError("arm", arm_id, f"not an arm of {self.label}; known: {known}")


def _zone(site: str, name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"site_time_zones.{site}", name, "must be an IANA time zone, e.g. Europe/Stockholm"
        ) from None


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"protocol file {source} is not valid:"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {location}: {item['msg']}")
    return "\n".join(lines)


def parse_protocol(text: str, source: str = "<text>") -> Protocol:
    """Parse and validate protocol TOML text; errors name the source and each failing field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProtocolFileError(f"protocol file {source} is not valid TOML: {error}") from None
    try:
        return Protocol.model_validate(data)
    except ValidationError as error:
        raise ProtocolFileError(_format_validation_error(source, error)) from None


def load_protocol(path: str | Path) -> Protocol:
    """Load and validate a protocol file from disk."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ProtocolFileError(f"protocol file {file} cannot be read: {error}") from None
    return parse_protocol(text, str(file))


def shipped_protocol_files() -> list[str]:
    """Names of the protocol versions shipped inside the package."""
    return sorted(version.file for version in protocol_versions().versions)


@dataclass(frozen=True)
class ProtocolVersion:
    """One version of the protocol and the file it was read from."""

    file: str
    protocol: Protocol


def _refuse_clash(first: ProtocolVersion, second: ProtocolVersion) -> None:
    """Two files of one registry must be versions of the same protocol, each with its own
    version and its own effective date."""
    one, other = first.protocol, second.protocol
    if one.id != other.id:
        clash = f"are versions of different protocols ({one.id}, {other.id})"
    elif one.version == other.version:
        clash = f"have the same version {one.version}"
    elif one.effective_date == other.effective_date:
        clash = f"have the same effective_date {one.effective_date}"
    else:
        return
    raise ProtocolFileError(
        f"protocol files {first.file} and {second.file} {clash}: "
        "each version of a protocol is one file with its own version and effective_date"
    )


@dataclass(frozen=True)
class ProtocolVersions:
    """The registry of a protocol's versions, in order of effective date."""

    versions: tuple[ProtocolVersion, ...]

    @classmethod
    def from_folder(cls, folder: Traversable) -> ProtocolVersions:
        """Every *.toml in `folder`, validated; an empty folder, two files with the same
        version or effective date, or files of different protocols are refused (naming the
        folder or both files)."""
        files = sorted(
            (item for item in folder.iterdir() if item.name.endswith(".toml")),
            key=lambda item: item.name,
        )
        versions = [
            ProtocolVersion(f.name, parse_protocol(f.read_text("utf-8"), f.name)) for f in files
        ]
        if not versions:
            raise ProtocolFileError(f"protocol folder {folder} holds no protocol file (*.toml)")
        for index, version in enumerate(versions):
            for earlier in versions[:index]:
                _refuse_clash(earlier, version)
        return cls(tuple(sorted(versions, key=lambda v: v.protocol.effective_date)))

    def in_force(self, on: date) -> Protocol:
        """The latest version whose effective date is on or before `on`; a date before the
        first version's is refused."""
        first = self.first
        if on < first.effective_date:
            raise InvalidInputError(
                "date",
                on.isoformat(),
                f"must be on or after the effective_date of {first.label} "
                f"({first.effective_date}): no protocol version is in force before it",
            )
        return [v.protocol for v in self.versions if v.protocol.effective_date <= on][-1]

    @property
    def first(self) -> Protocol:
        """The first version: its effective date is the trial start."""
        return self.versions[0].protocol


_REGISTRIES: dict[str, ProtocolVersions] = {}


def protocol_versions(folder: Traversable | None = None) -> ProtocolVersions:
    """The registry of the protocol files in `folder` (default `PROTOCOL_FOLDER`), read once
    per process and folder: a file added while running is seen after a restart."""
    folder = PROTOCOL_FOLDER if folder is None else folder
    key = str(folder)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = ProtocolVersions.from_folder(folder)
    return _REGISTRIES[key]


def protocol_in_force(on: date, folder: Traversable | None = None) -> Protocol:
    """The protocol version in force on `on` (see the module docstring)."""
    return protocol_versions(folder).in_force(on)


def default_protocol() -> Protocol:
    """The version in force today, for callers that have no date of their own."""
    return protocol_in_force(date.today())

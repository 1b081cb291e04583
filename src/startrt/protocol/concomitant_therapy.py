"""Concomitant medications against the protocol's prohibited therapies.

START-01 excludes "concomitant systemic anti-tumour therapy other than somatostatin analogues
(SSA)" and requires earlier anti-tumour treatment except SSA to have ended >= 4 weeks before
the start (../shared/PROTOCOL.md, eligibility IN09 and EX03). A medication is coded by the WHO
Anatomical Therapeutic Chemical classification (WHO Collaborating Centre for Drug Statistics
Methodology, "Guidelines for ATC classification and DDD assignment", Oslo 2024); the protocol
file's `[concomitant_therapy]` section lists the ATC prefixes that are prohibited and those
allowed inside them, and the washout in days. The longest listed prefix of a code decides.

Rules chosen here (stated, not hidden):
- Systemic anti-tumour therapy is ATC L01 (antineoplastic agents), L02 (endocrine therapy of
  tumours), the interferons alfa (L03AB01, -04, -05, -10, -11: ENETS 2023 lists interferon alfa
  as an antiproliferative NET therapy; prohibited whatever the indication written, the
  investigator acknowledging the deviation with the reason) and therapeutic radiopharmaceuticals
  V10 (another PRRT or radionuclide therapy). SSA are H01CB, allowed; H01CB is also listed as
  allowed so an amendment widening the prohibited list keeps them allowed.
- A code given at a shorter ATC level than the one that decides (L, L03AB) is refused: the
  drug's class cannot be told from it.
- The trial's own treatments are no concomitant medications: 177Lu-DOTATOC (named in
  `trial_treatment_names`; it has no ATC code) is recorded as cycles, and capecitabine
  (`capecitabine_atc_code`) in an arm that gives it is recorded as prescriptions and
  dispensings; entering them here is refused. In an arm without capecitabine (or before
  randomization) capecitabine is an anti-tumour therapy like any other.
- A prohibited therapy is a protocol deviation when it was taken on or after the first cycle
  (`CONCOMITANT`: ongoing, or stopped on or after the first cycle's day, and started no later
  than the end of treatment) or stopped fewer than `washout_days` days before the first cycle
  (`WASHOUT`: stopped 27 days before is a deviation, 28 days before is not). A therapy started
  after the end of protocol treatment is subsequent therapy, not a deviation. The first cycle's
  day is the day of its infusion, or its planned day before that, or the planned start of
  treatment from screening; without any, the finding is `PENDING` and checked again later.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from startrt.protocol.decision import Decision
from startrt.protocol.records import Record, parse_record
from startrt.protocol.vocabulary import MedicationRoute, TherapyFinding
from startrt.validation import CleanText, InvalidInputError

if TYPE_CHECKING:
    from startrt.protocol.definition import Protocol

ATC_CODE = re.compile(r"[A-Z](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?")
"""An ATC code at any of its five levels: L, L01, L01E, L01EG, L01EG02."""
ATC_RULE = (
    "an ATC code: a letter, 2 digits, a letter, a letter, 2 digits (L01EG02), "
    "or a shorter level of it (L, L01, L01E, L01EG)"
)
DRUGS_FILE = "concomitant_drugs.toml"

Name = Annotated[CleanText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalText = Annotated[CleanText, StringConstraints(strip_whitespace=True, max_length=200)]


def parse_atc_code(value: object, field: str = "atc_code") -> str:
    """`value` as an ATC code (blanks stripped, upper case); refused unless of ATC form."""
    code = value.strip().upper() if isinstance(value, str) else None
    if code is None or not ATC_CODE.fullmatch(code):
        raise InvalidInputError(field, value, f"must be {ATC_RULE}")
    return code


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConcomitantTherapySettings(_Frozen):
    """The protocol file's `[concomitant_therapy]` section."""

    prohibited_text: str = Field(min_length=1)
    prohibited_atc_prefixes: tuple[str, ...] = Field(min_length=1)
    allowed_atc_prefixes: tuple[str, ...] = ()
    washout_days: int = Field(strict=True, ge=0, le=365)
    trial_treatment_names: tuple[str, ...] = ()
    capecitabine_atc_code: str

    @model_validator(mode="after")
    def _codes(self) -> Self:
        codes = (*self.prohibited_atc_prefixes, *self.allowed_atc_prefixes)
        for code in (*codes, self.capecitabine_atc_code):
            if not ATC_CODE.fullmatch(code):
                raise ValueError(f"{code!r} is not {ATC_RULE}")
        both = set(self.prohibited_atc_prefixes) & set(self.allowed_atc_prefixes)
        if both or len(set(codes)) != len(codes):
            raise ValueError(f"an ATC prefix is listed twice: {sorted(both) or list(codes)}")
        return self

    def rules(self) -> list[tuple[str, bool]]:
        """(prefix, prohibited) of every listed prefix."""
        return [(p, True) for p in self.prohibited_atc_prefixes] + [
            (p, False) for p in self.allowed_atc_prefixes
        ]


@dataclass(frozen=True)
class TherapyClass:
    """An ATC code's class: prohibited or not, and the listed prefix that decided (None: no
    listed prefix matches, so the drug is allowed)."""

    atc_code: str
    prohibited: bool
    prefix: str | None


def classify(atc_code: str, settings: ConcomitantTherapySettings) -> TherapyClass:
    """The class of `atc_code` by the longest listed prefix it starts with; a code shorter than
    a listed prefix that would decide otherwise is refused (its class is not known)."""
    code = parse_atc_code(atc_code)
    matching = [(prefix, banned) for prefix, banned in settings.rules() if code.startswith(prefix)]
    prefix, prohibited = max(matching, key=lambda rule: len(rule[0]), default=(None, False))
    deeper = [p for p, banned in settings.rules() if p.startswith(code) and p != code]
    undecided = [p for p, banned in settings.rules() if p in deeper and banned != prohibited]
    if undecided:
        raise InvalidInputError(
            "atc_code",
            code,
            f"too general: the protocol decides at {', '.join(undecided)}; give the drug's "
            "code to that level",
        )
    return TherapyClass(code, prohibited, prefix)


class ConcomitantMedicationRecord(Record):
    """A concomitant medication as entered: the drug by name and ATC code, what it is given
    for, the start and stop days (no stop: ongoing), dose and route when known."""

    drug_name: Name
    atc_code: str
    indication: Name
    start_date: date
    stop_date: date | None = None
    dose: OptionalText = ""
    route: MedicationRoute | None = None

    @field_validator("atc_code")
    @classmethod
    def _atc_code(cls, value: str) -> str:
        code = value.strip().upper()
        if not ATC_CODE.fullmatch(code):
            raise PydanticCustomError("atc_code", "must be {rule}", {"rule": ATC_RULE})
        return code


def parse_medication(data: object) -> ConcomitantMedicationRecord:
    """`data` validated as a concomitant medication (each refused field named); the stop not
    before the start."""
    record = parse_record(ConcomitantMedicationRecord, data, "concomitant medication")
    if record.stop_date is not None and record.stop_date < record.start_date:
        raise InvalidInputError(
            "stop_date",
            record.stop_date.isoformat(),
            f"must not be before the start date ({record.start_date})",
        )
    return record


def refuse_trial_treatment(
    record: ConcomitantMedicationRecord,
    settings: ConcomitantTherapySettings,
    *,
    arm_gives_capecitabine: bool,
) -> None:
    """Refuse the trial's own treatment entered as a concomitant medication."""
    name = _folded(record.drug_name)
    for trial_name in settings.trial_treatment_names:
        if _folded(trial_name) in name:
            raise InvalidInputError(
                "drug_name",
                record.drug_name,
                f"is the trial's {trial_name} treatment: recorded as cycles on the treatment "
                "page, not as a concomitant medication",
            )
    if arm_gives_capecitabine and record.atc_code == settings.capecitabine_atc_code:
        raise InvalidInputError(
            "atc_code",
            record.atc_code,
            "capecitabine is the protocol treatment of the patient's arm: recorded as "
            "prescriptions and dispensings on the capecitabine page, not as a concomitant "
            "medication",
        )


def _folded(text: str) -> str:
    """Letters and digits only, lower case: "177Lu-DOTATOC" -> "177ludotatoc"."""
    return "".join(character for character in text.lower() if character.isalnum())


class ConcomitantTherapyCheck(Decision):
    """The rule's finding for one medication, with what it read."""

    atc_code: str
    prohibited: bool
    prefix: str | None
    finding: TherapyFinding
    first_cycle_date: date | None
    days_stopped_before_first_cycle: int | None
    description: str

    @property
    def deviation(self) -> bool:
        return self.finding.deviation


def check_concomitant_therapy(
    record: ConcomitantMedicationRecord,
    protocol: Protocol,
    *,
    first_cycle_date: date | None,
    end_of_treatment_date: date | None = None,
) -> ConcomitantTherapyCheck:
    """Whether `record` is allowed, prior or subsequent therapy, or a protocol deviation
    (taken during the treatment, or stopped within the washout before the first cycle)."""
    settings = protocol.concomitant_therapy
    if settings is None:
        raise InvalidInputError(
            "protocol", protocol.label, "has no [concomitant_therapy] section to check against"
        )
    therapy = classify(record.atc_code, settings)
    washout = settings.washout_days
    days_before: int | None = None
    if not therapy.prohibited:
        finding = TherapyFinding.ALLOWED
        text = f"{record.drug_name} ({therapy.atc_code}) is not a prohibited therapy"
    elif end_of_treatment_date is not None and record.start_date > end_of_treatment_date:
        finding = TherapyFinding.SUBSEQUENT_THERAPY
        text = f"started after the end of protocol treatment ({end_of_treatment_date})"
    elif first_cycle_date is None:
        finding = TherapyFinding.PENDING
        text = "the first cycle has no date yet: checked again once it has"
    elif record.stop_date is None or record.stop_date >= first_cycle_date:
        finding = TherapyFinding.CONCOMITANT
        taken = "ongoing" if record.stop_date is None else f"stopped {record.stop_date}"
        text = f"taken during protocol treatment ({taken}; first cycle {first_cycle_date})"
    else:
        days_before = (first_cycle_date - record.stop_date).days
        finding = TherapyFinding.WASHOUT if days_before < washout else TherapyFinding.PRIOR_THERAPY
        verdict = "fewer than" if days_before < washout else "at least"
        text = (
            f"stopped {days_before} days before the first cycle ({first_cycle_date}): "
            f"{verdict} the {washout}-day washout"
        )
    if therapy.prohibited:
        text = (
            f"{record.drug_name} ({therapy.atc_code}, ATC {therapy.prefix}) is "
            f"{settings.prohibited_text}; {text}"
        )
    return ConcomitantTherapyCheck(
        kind="concomitant_therapy",
        protocol=protocol.label,
        rule=_rule_text(settings),
        inputs={
            **record.model_dump(mode="json", include={"drug_name", "atc_code"}),
            "start_date": record.start_date.isoformat(),
            "stop_date": None if record.stop_date is None else record.stop_date.isoformat(),
            "first_cycle_date": None if first_cycle_date is None else first_cycle_date.isoformat(),
            "end_of_treatment_date": None
            if end_of_treatment_date is None
            else end_of_treatment_date.isoformat(),
        },
        atc_code=therapy.atc_code,
        prohibited=therapy.prohibited,
        prefix=therapy.prefix,
        finding=finding,
        first_cycle_date=first_cycle_date,
        days_stopped_before_first_cycle=days_before,
        description=text,
    )


def _rule_text(settings: ConcomitantTherapySettings) -> str:
    prohibited = ", ".join(settings.prohibited_atc_prefixes)
    allowed = ", ".join(settings.allowed_atc_prefixes) or "none"
    return (
        f"prohibited: {settings.prohibited_text} (ATC {prohibited}; "
        f"allowed within them: {allowed}), a deviation when taken on or after the first cycle "
        f"up to the end of treatment, or stopped fewer than {settings.washout_days} days before "
        "the first cycle"
    )


@dataclass(frozen=True)
class Drug:
    """A drug of the picker: its name and ATC code."""

    name: str
    atc_code: str


class _DrugList(_Frozen):
    schema_version: str = Field(alias="schema")
    atc_index: str
    drugs: tuple[Drug, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        names = [drug.name.lower() for drug in self.drugs]
        if len(set(names)) != len(names):
            raise ValueError("a drug is listed twice")
        for drug in self.drugs:
            parse_atc_code(drug.atc_code, f"drugs.{drug.name}")
        return self


@cache
def picker_drugs() -> tuple[Drug, ...]:
    """The shipped drug list (`data/concomitant_drugs.toml`), validated, by name."""
    text = resources.files("startrt.protocol").joinpath("data", DRUGS_FILE).read_text("utf-8")
    listing = _DrugList.model_validate(tomllib.loads(text))
    return tuple(sorted(listing.drugs, key=lambda drug: drug.name.lower()))

"""The trial's value sets, defined once: the web models' choices, the simulation and the
analysis dataset use these members (their values are what is stored and exported), and each
member's `label` is how people see it.

Arms are not here: they are data of the protocol file (`Protocol.arms`, `randomization.arms`).
RECIST 1.1 responses are `startrt.clinical.recist.Response`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Vocabulary(StrEnum):
    """A value set whose members each have a label for people (registered with `_labels`)."""

    @property
    def label(self) -> str:
        return _LABELS[type(self)][self]

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """(value, label) of every member, in definition order (Django's `choices`)."""
        return [(member.value, member.label) for member in cls]


_LABELS: dict[type[Vocabulary], Mapping[Any, str]] = {}


def _labels(vocabulary: type[Vocabulary], labels: Mapping[Any, str]) -> None:
    missing = [member.value for member in vocabulary if member not in labels]
    if missing or len(labels) != len(vocabulary):
        raise ValueError(f"{vocabulary.__name__}: a label for each member, missing {missing}")
    _LABELS[vocabulary] = labels


class EndOfTreatmentReason(Vocabulary):
    """Why protocol treatment ended (`ends_as_planned` says which reasons are completion)."""

    COMPLETED = "completed"
    RENAL_LIMIT = "renal_limit"
    MARROW_LIMIT = "marrow_limit"
    TOXICITY = "toxicity"
    PROGRESSION = "progression"
    WITHDRAWAL = "withdrawal"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    DEATH = "death"
    OTHER = "other"


_labels(
    EndOfTreatmentReason,
    {
        EndOfTreatmentReason.COMPLETED: "Completed the planned cycles",
        EndOfTreatmentReason.RENAL_LIMIT: "Cumulative kidney dose limit reached",
        EndOfTreatmentReason.MARROW_LIMIT: "Cumulative bone-marrow dose limit reached",
        EndOfTreatmentReason.TOXICITY: "Toxicity (including pre-cycle laboratory values)",
        EndOfTreatmentReason.PROGRESSION: "Progression",
        EndOfTreatmentReason.WITHDRAWAL: "Withdrawal of consent",
        EndOfTreatmentReason.LOST_TO_FOLLOW_UP: "Lost to follow-up",
        EndOfTreatmentReason.DEATH: "Death",
        EndOfTreatmentReason.OTHER: "Other (see details)",
    },
)

DOSE_LIMIT_REASONS = frozenset(
    {EndOfTreatmentReason.RENAL_LIMIT, EndOfTreatmentReason.MARROW_LIMIT}
)


def ends_as_planned(reason: EndOfTreatmentReason, dosimetry_guided: bool) -> bool:
    """Whether treatment ending for `reason` is its planned completion: the planned cycles
    were given (`completed`, any arm), or a dosimetry-guided arm (`Arm.dosimetry_guided`)
    reached its cumulative absorbed-dose limit (`renal_limit`, `marrow_limit`: personalized
    PRRT is given until the limit, so reaching it completes treatment). In an arm of fixed
    cycles a dose limit ends treatment early: a discontinuation."""
    if reason == EndOfTreatmentReason.COMPLETED:
        return True
    return dosimetry_guided and reason in DOSE_LIMIT_REASONS


class SeriousnessCriterion(Vocabulary):
    """Criteria making an adverse event serious (ICH E2A, 1994)."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALISATION = "hospitalisation"
    DISABILITY = "disability"
    CONGENITAL_ANOMALY = "congenital_anomaly"
    OTHER_IMPORTANT = "other_important"


_labels(
    SeriousnessCriterion,
    {
        SeriousnessCriterion.DEATH: "Results in death",
        SeriousnessCriterion.LIFE_THREATENING: "Life-threatening",
        SeriousnessCriterion.HOSPITALISATION: "Requires or prolongs hospitalisation",
        SeriousnessCriterion.DISABILITY: "Persistent or significant disability or incapacity",
        SeriousnessCriterion.CONGENITAL_ANOMALY: "Congenital anomaly or birth defect",
        SeriousnessCriterion.OTHER_IMPORTANT: "Other important medical event",
    },
)


class PrimarySite(Vocabulary):
    """Where the neuroendocrine tumour arose (the primary's organ, as NET registries group it:
    WHO Classification of Tumours, Digestive System Tumours, 5th ed., 2019)."""

    PANCREAS = "pancreas"
    SMALL_INTESTINE = "small_intestine"
    STOMACH_DUODENUM = "stomach_duodenum"
    COLON_RECTUM = "colon_rectum"
    LUNG = "lung"
    OTHER = "other"
    UNKNOWN_PRIMARY = "unknown_primary"


_labels(
    PrimarySite,
    {
        PrimarySite.PANCREAS: "Pancreas",
        PrimarySite.SMALL_INTESTINE: "Small intestine (jejunum, ileum)",
        PrimarySite.STOMACH_DUODENUM: "Stomach or duodenum",
        PrimarySite.COLON_RECTUM: "Colon or rectum",
        PrimarySite.LUNG: "Lung (bronchial)",
        PrimarySite.OTHER: "Other site",
        PrimarySite.UNKNOWN_PRIMARY: "Unknown primary",
    },
)


class Attribution(Vocabulary):
    """Relatedness of an adverse event to a treatment; not applicable when the arm does not
    give that treatment."""

    UNRELATED = "unrelated"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"
    NOT_APPLICABLE = "not_applicable"


_labels(
    Attribution,
    {
        Attribution.UNRELATED: "Unrelated",
        Attribution.UNLIKELY: "Unlikely",
        Attribution.POSSIBLE: "Possible",
        Attribution.PROBABLE: "Probable",
        Attribution.DEFINITE: "Definite",
        Attribution.NOT_APPLICABLE: "Not applicable (not given in this arm)",
    },
)


class AdverseEventOutcome(Vocabulary):
    """Outcome of an adverse event (the CDISC SDTM OUT codelist)."""

    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


_labels(
    AdverseEventOutcome,
    {
        AdverseEventOutcome.RECOVERED: "Recovered / resolved",
        AdverseEventOutcome.RECOVERING: "Recovering / resolving",
        AdverseEventOutcome.NOT_RECOVERED: "Not recovered / not resolved",
        AdverseEventOutcome.RECOVERED_WITH_SEQUELAE: "Recovered / resolved with sequelae",
        AdverseEventOutcome.FATAL: "Fatal",
        AdverseEventOutcome.UNKNOWN: "Unknown",
    },
)


class VitalStatus(Vocabulary):
    """A patient's status at a follow-up contact."""

    ALIVE = "alive"
    DEAD = "dead"
    LOST = "lost"


_labels(
    VitalStatus,
    {VitalStatus.ALIVE: "Alive", VitalStatus.DEAD: "Dead", VitalStatus.LOST: "Lost to follow-up"},
)


class MedicationRoute(Vocabulary):
    """How a concomitant medication is given (`protocol.concomitant_therapy`)."""

    ORAL = "oral"
    INTRAVENOUS = "intravenous"
    SUBCUTANEOUS = "subcutaneous"
    INTRAMUSCULAR = "intramuscular"
    TRANSDERMAL = "transdermal"
    INHALED = "inhaled"
    RECTAL = "rectal"
    TOPICAL = "topical"
    OTHER = "other"


_labels(
    MedicationRoute,
    {
        MedicationRoute.ORAL: "Oral",
        MedicationRoute.INTRAVENOUS: "Intravenous",
        MedicationRoute.SUBCUTANEOUS: "Subcutaneous",
        MedicationRoute.INTRAMUSCULAR: "Intramuscular (depot)",
        MedicationRoute.TRANSDERMAL: "Transdermal",
        MedicationRoute.INHALED: "Inhaled",
        MedicationRoute.RECTAL: "Rectal",
        MedicationRoute.TOPICAL: "Topical",
        MedicationRoute.OTHER: "Other",
    },
)


class TherapyFinding(Vocabulary):
    """What the protocol's concomitant-therapy rule finds for one medication
    (`protocol.concomitant_therapy.check_concomitant_therapy`); `deviation` says which findings
    are protocol deviations."""

    ALLOWED = "allowed"
    PRIOR_THERAPY = "prior_therapy"
    SUBSEQUENT_THERAPY = "subsequent_therapy"
    PENDING = "pending"
    CONCOMITANT = "concomitant"
    WASHOUT = "washout"

    @property
    def deviation(self) -> bool:
        return self in (TherapyFinding.CONCOMITANT, TherapyFinding.WASHOUT)


_labels(
    TherapyFinding,
    {
        TherapyFinding.ALLOWED: "Allowed",
        TherapyFinding.PRIOR_THERAPY: "Prohibited therapy stopped before the washout: allowed",
        TherapyFinding.SUBSEQUENT_THERAPY: "Therapy after the end of protocol treatment: allowed",
        TherapyFinding.PENDING: "Prohibited therapy: checked once the first cycle is dated",
        TherapyFinding.CONCOMITANT: "Protocol deviation: prohibited therapy during the treatment",
        TherapyFinding.WASHOUT: "Protocol deviation: prohibited therapy within the washout",
    },
)


class InvestigationalProduct(Vocabulary):
    """The trial's investigational products, as adverse events are attributed to them (the
    events' `attribution_<product>` fields) and as the reference safety information lists
    their expected reactions (`protocol.safety_reporting`)."""

    PRRT = "prrt"
    CAPECITABINE = "capecitabine"


_labels(
    InvestigationalProduct,
    {
        InvestigationalProduct.PRRT: "PRRT (177Lu-DOTATOC)",
        InvestigationalProduct.CAPECITABINE: "Capecitabine",
    },
)

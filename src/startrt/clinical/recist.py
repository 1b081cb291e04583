"""RECIST 1.1 tumour response: target selection, time-point responses, best overall response.

Source: Eisenhauer EA et al., New response evaluation criteria in solid tumours: revised RECIST
guideline (version 1.1), Eur J Cancer 2009;45:228-247 (tables 1 and 2), with the RECIST working
group's published clarifications (recist.eortc.org FAQ; Schwartz LH et al., RECIST 1.1 - Update
and clarification, Eur J Cancer 2016;62:132-137): all lymph nodes count as one organ; a lesion
reappearing after an overall CR is PD; a target node that went below 10 mm short axis has only
reappeared once it is >= 10 mm again, since nodes < 10 mm are normal. Diameters are in mm
(short axis for lymph nodes); percent thresholds are compared in decimal arithmetic on the
numbers as written, so exactly -30 % is PR and exactly +20 % (with >= 5 mm) is PD.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal

from startrt.validation import InvalidInputError, PlausibleRange, finite_number

TOO_SMALL: Final = "too_small"
TargetValue = float | Literal["too_small"] | None
"""A target measurement: diameter in mm, "too_small" (counted as 5 mm), None = not evaluated."""

LESION_DIAMETER_MM = PlausibleRange(0.0, 500.0, "mm")
MEASURABLE_LESION_MM: Final = Decimal(10)
MEASURABLE_NODE_SHORT_AXIS_MM: Final = Decimal(15)
NORMAL_NODE_SHORT_AXIS_MM: Final = Decimal(10)
TOO_SMALL_MM: Final = Decimal(5)
MAX_TARGETS: Final = 5
MAX_TARGETS_PER_ORGAN: Final = 2
PR_DECREASE_PCT: Final = Decimal(30)
PD_INCREASE_PCT: Final = Decimal(20)
PD_INCREASE_MM: Final = Decimal(5)
LYMPH_NODES_ORGAN: Final = "lymph nodes"


class NonTargetStatus(StrEnum):
    """Status of one non-target lesion at a follow-up assessment."""

    ABSENT = "absent"
    PRESENT = "present"
    UNEQUIVOCAL_PROGRESSION = "unequivocal_progression"
    NOT_EVALUATED = "not_evaluated"


# RECIST 1.1 section 4.4.3: SD must be met at least once >= 6-8 weeks after baseline; 6 weeks.
SD_MIN_INTERVAL_DAYS = 42


class Response(StrEnum):
    """RECIST 1.1 response categories; NON_CR_NON_PD applies to non-target disease only."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"
    NON_CR_NON_PD = "non-CR/non-PD"


_TARGET_RESPONSES = (Response.CR, Response.PR, Response.SD, Response.PD, Response.NE)
_NON_TARGET_RESPONSES = (Response.CR, Response.NON_CR_NON_PD, Response.PD, Response.NE)


@dataclass(frozen=True)
class Lesion:
    """A baseline lesion; diameter: longest (short axis for nodes) in mm, None if unmeasured."""

    id: str
    organ: str
    lymph_node: bool
    diameter_mm: float | None
    target: bool


@dataclass(frozen=True)
class Baseline:
    """Baseline assessment: date and every lesion recorded (target and non-target)."""

    date: dt.date
    lesions: tuple[Lesion, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "lesions", tuple(self.lesions))


@dataclass(frozen=True)
class FollowUp:
    """A follow-up assessment: target measurements, non-target statuses, new lesions seen."""

    date: dt.date
    target_mm: Mapping[str, TargetValue]
    non_target: Mapping[str, NonTargetStatus]
    new_lesions: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_mm", MappingProxyType(dict(self.target_mm)))
        object.__setattr__(self, "non_target", MappingProxyType(dict(self.non_target)))


@dataclass(frozen=True)
class Series:
    """One patient's baseline and follow-up assessments in date order."""

    baseline: Baseline
    follow_up: tuple[FollowUp, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "follow_up", tuple(self.follow_up))


@dataclass(frozen=True)
class AssessmentResponse:
    """Responses at one follow-up; sums in mm, changes in percent (None where undefined).

    sum_mm is None when a target was not evaluated, unless the evaluated ones already prove PD
    (then it is their partial sum). nadir_mm is the reference for PD at this assessment: the
    smallest complete sum before it, baseline included. target is None without baseline target
    lesions, non_target None without baseline non-target lesions.
    """

    date: dt.date
    sum_mm: float | None
    nadir_mm: float | None
    change_from_baseline_pct: float | None
    change_from_nadir_pct: float | None
    target: Response | None
    non_target: Response | None
    new_lesions: bool
    overall: Response


@dataclass(frozen=True)
class SeriesResponse:
    """Time-point responses of a series and its best overall response."""

    assessments: tuple[AssessmentResponse, ...]
    best_overall: Response


def validate_targets(lesions: Sequence[Lesion]) -> None:
    """Raise InvalidInputError unless the lesions' target choice follows RECIST 1.1.

    Targets must be measurable (>= 10 mm; lymph node short axis >= 15 mm), at most 5 in all and
    2 per organ, all lymph nodes counting as one organ. Source: Eisenhauer, EJC 2009, 3.2-3.3.
    """
    for index, lesion in enumerate(lesions):
        _check_lesion(f"lesions[{index}]", lesion)
    _check_unique_ids(lesions)
    targets = [(index, lesion) for index, lesion in enumerate(lesions) if lesion.target]
    for index, lesion in targets:
        if not _measurable(lesion):
            raise InvalidInputError(
                f"lesions[{index}].diameter_mm", lesion.diameter_mm, _measurable_rule(lesion)
            )
    if len(targets) > MAX_TARGETS:
        raise InvalidInputError(
            "lesions", f"{len(targets)} targets", f"at most {MAX_TARGETS} target lesions"
        )
    per_organ: Counter[str] = Counter()
    for index, lesion in targets:
        per_organ[_organ_key(lesion)] += 1
        if per_organ[_organ_key(lesion)] > MAX_TARGETS_PER_ORGAN:
            raise InvalidInputError(
                f"lesions[{index}].organ",
                lesion.organ,
                f"at most {MAX_TARGETS_PER_ORGAN} target lesions per organ "
                "(all lymph nodes count as one organ)",
            )


def propose_targets(lesions: Sequence[Lesion]) -> tuple[Lesion, ...]:
    """The largest measurable lesions, at most 5 and 2 per organ, largest first, as targets.

    Ties keep input order. Source: Eisenhauer, EJC 2009, 3.3 (selection by size).
    """
    for index, lesion in enumerate(lesions):
        _check_lesion(f"lesions[{index}]", lesion)
    _check_unique_ids(lesions)
    by_size = sorted(
        (lesion for lesion in lesions if _measurable(lesion)),
        key=lambda lesion: -_mm(lesion.diameter_mm or 0.0),
    )
    chosen: list[Lesion] = []
    per_organ: Counter[str] = Counter()
    for lesion in by_size:
        if len(chosen) == MAX_TARGETS:
            break
        if per_organ[_organ_key(lesion)] < MAX_TARGETS_PER_ORGAN:
            per_organ[_organ_key(lesion)] += 1
            chosen.append(replace(lesion, target=True))
    return tuple(chosen)


def target_response(
    targets: Sequence[Lesion],
    measurements_mm: Mapping[str, TargetValue],
    *,
    nadir_mm: float,
    after_complete_response: bool = False,
) -> Response:
    """Target-lesion response (CR, PR, SD, PD or NE) at one assessment.

    CR: non-nodal targets 0 mm and every target node < 10 mm; PR: sum >= 30 % below baseline;
    PD: sum >= 20 % and >= 5 mm above `nadir_mm` (smallest earlier sum, baseline included), or
    after an overall CR any target reappearing (non-nodal > 0 mm, node >= 10 mm); NE: a target
    not evaluated, unless the others already prove PD. Source: Eisenhauer, EJC 2009, 4.3.1.

    Nodes keep their short axis in the sum after they fall below 10 mm (Eisenhauer 2009, 4.3.1),
    but a node < 10 mm is normal and has not reappeared until it is >= 10 mm again (EORTC
    RECIST FAQ "Abnormal lymph node"; Schwartz, EJC 2016). So while every target meets CR the
    response is CR whatever the sum does: a node 20 -> 4 -> 9 mm adds 5 mm (+125 %) to a sum
    of normal nodes and stays CR, and 20 -> 4 -> 10 mm is PD after an overall CR.
    """
    if not targets or not all(lesion.target for lesion in targets):
        raise InvalidInputError("targets", len(targets), "must be baseline target lesions (>= 1)")
    validate_targets(targets)
    _check_target_measurements("measurements_mm", targets, measurements_mm)
    baseline_sum = _baseline_sum(targets)
    nadir = _mm(LESION_DIAMETER_MM.check("nadir_mm", nadir_mm))
    if nadir > baseline_sum:
        raise InvalidInputError("nadir_mm", nadir_mm, f"must be <= baseline sum {baseline_sum} mm")
    return _assess_targets(
        targets, measurements_mm, baseline_sum, nadir, after_complete_response
    ).response


def non_target_response(
    statuses: Mapping[str, NonTargetStatus], *, after_complete_response: bool = False
) -> Response:
    """Non-target response (CR, non-CR/non-PD, PD or NE) at one assessment.

    PD: unequivocal progression, or a lesion present again after an overall CR; NE: a lesion not
    evaluated; CR: all absent (nodes < 10 mm). Source: Eisenhauer, EJC 2009, 4.3.3.
    """
    if not statuses:
        raise InvalidInputError("statuses", {}, "needs at least one non-target lesion")
    checked = [_status(f"statuses.{key}", value) for key, value in statuses.items()]
    if NonTargetStatus.UNEQUIVOCAL_PROGRESSION in checked:
        return Response.PD
    if after_complete_response and NonTargetStatus.PRESENT in checked:
        return Response.PD
    if NonTargetStatus.NOT_EVALUATED in checked:
        return Response.NE
    if all(status == NonTargetStatus.ABSENT for status in checked):
        return Response.CR
    return Response.NON_CR_NON_PD


def overall_response(
    target: Response | None, non_target: Response | None, *, new_lesions: bool
) -> Response:
    """Overall time-point response from RECIST 1.1 table 1 (targets) or table 2 (none).

    None stands for "no such lesions at baseline". Source: Eisenhauer, EJC 2009, tables 1-2.
    """
    target = _response("target", target, _TARGET_RESPONSES)
    non_target = _response("non_target", non_target, _NON_TARGET_RESPONSES)
    if not isinstance(new_lesions, bool):
        raise InvalidInputError("new_lesions", new_lesions, "must be a bool")
    if new_lesions or Response.PD in (target, non_target):
        return Response.PD
    if target is None:
        if non_target is None:
            raise InvalidInputError("target", None, "needs target or non-target lesions")
        return non_target
    if target == Response.CR:
        return Response.CR if non_target in (Response.CR, None) else Response.PR
    return target


def _response(field: str, value: object, allowed: tuple[Response, ...]) -> Response | None:
    if value is None:
        return None
    for response in allowed:
        if value == response:
            return response
    raise InvalidInputError(field, value, f"must be one of {', '.join(allowed)} or None")


def evaluate_series(
    series: Series, *, sd_min_interval_days: int = SD_MIN_INTERVAL_DAYS
) -> SeriesResponse:
    """Time-point responses of every follow-up and the best overall response (unconfirmed).

    Best overall response: CR > PR > SD > PD > NE over the assessments up to the first PD; SD
    (non-CR/non-PD without targets) counts only >= `sd_min_interval_days` after baseline; an
    earlier SD followed by PD gives PD, otherwise NE. Confirmation of CR/PR is not applied
    (randomised trial). Source: Eisenhauer, EJC 2009, 4.4.
    """
    if isinstance(sd_min_interval_days, bool) or not isinstance(sd_min_interval_days, int):
        raise InvalidInputError("sd_min_interval_days", sd_min_interval_days, "must be an int")
    if not 0 <= sd_min_interval_days <= 365:
        raise InvalidInputError("sd_min_interval_days", sd_min_interval_days, "must be 0-365")
    _check_series(series)
    lesions = series.baseline.lesions
    targets = [lesion for lesion in lesions if lesion.target]
    has_non_targets = len(targets) < len(lesions)
    baseline_sum = _baseline_sum(targets) if targets else None
    nadir = baseline_sum
    last_evaluable: Response | None = None
    assessments = []
    for visit in series.follow_up:
        after_cr = last_evaluable == Response.CR
        target, sum_mm, complete = None, None, False
        if baseline_sum is not None and nadir is not None:
            state = _assess_targets(targets, visit.target_mm, baseline_sum, nadir, after_cr)
            target, sum_mm, complete = state.response, state.sum_mm, state.complete
        non_target = (
            non_target_response(visit.non_target, after_complete_response=after_cr)
            if has_non_targets
            else None
        )
        overall = overall_response(target, non_target, new_lesions=visit.new_lesions)
        assessments.append(
            AssessmentResponse(
                date=visit.date,
                sum_mm=_float(sum_mm),
                nadir_mm=_float(nadir),
                change_from_baseline_pct=_change_pct(sum_mm, baseline_sum),
                change_from_nadir_pct=_change_pct(sum_mm, nadir),
                target=target,
                non_target=non_target,
                new_lesions=visit.new_lesions,
                overall=overall,
            )
        )
        if complete and sum_mm is not None and nadir is not None:
            nadir = min(nadir, sum_mm)
        if overall != Response.NE:
            last_evaluable = overall
    best = best_overall_response(assessments, series.baseline.date, sd_min_interval_days)
    return SeriesResponse(tuple(assessments), best)


def parse_series(data: dict[str, Any]) -> Series:
    """Build and check a Series from its JSON shape; errors name the path, e.g.
    "follow_up[1].target_mm.L3". Source of the rules: Eisenhauer, EJC 2009."""
    root = _fields("data", data, ("baseline", "follow_up"))
    baseline_data = _fields("baseline", root["baseline"], ("date", "lesions"))
    lesions = tuple(
        _parse_lesion(f"baseline.lesions[{index}]", item)
        for index, item in enumerate(_list("baseline.lesions", baseline_data["lesions"]))
    )
    baseline = Baseline(_date("baseline.date", baseline_data["date"]), lesions)
    follow_up = tuple(
        _parse_follow_up(f"follow_up[{index}]", item)
        for index, item in enumerate(_list("follow_up", root["follow_up"]))
    )
    series = Series(baseline, follow_up)
    _check_series(series)
    return series


@dataclass(frozen=True)
class _TargetState:
    response: Response
    sum_mm: Decimal | None
    complete: bool


def _assess_targets(
    targets: Sequence[Lesion],
    measurements_mm: Mapping[str, TargetValue],
    baseline_sum: Decimal,
    nadir: Decimal,
    after_complete_response: bool,
) -> _TargetState:
    counted = [(lesion, _counted_mm(measurements_mm[lesion.id])) for lesion in targets]
    evaluated = [(lesion, mm) for lesion, mm in counted if mm is not None]
    partial_sum = sum((mm for _, mm in evaluated), Decimal(0))
    reappeared = after_complete_response and not all(
        _cleared(lesion, mm) for lesion, mm in evaluated
    )
    complete = len(evaluated) == len(targets)
    if reappeared:
        return _TargetState(Response.PD, partial_sum, complete)
    # Checked before the sum: a sum of normal (< 10 mm) nodes can grow, but no disease is seen.
    if complete and all(_cleared(lesion, mm) for lesion, mm in evaluated):
        return _TargetState(Response.CR, partial_sum, complete)
    if _progressed(partial_sum, nadir):
        return _TargetState(Response.PD, partial_sum, complete)
    if not complete:
        return _TargetState(Response.NE, None, complete)
    if (baseline_sum - partial_sum) * 100 >= PR_DECREASE_PCT * baseline_sum:
        return _TargetState(Response.PR, partial_sum, complete)
    return _TargetState(Response.SD, partial_sum, complete)


def _progressed(sum_mm: Decimal, nadir: Decimal) -> bool:
    increase = sum_mm - nadir
    return increase * 100 >= PD_INCREASE_PCT * nadir and increase >= PD_INCREASE_MM


def _cleared(lesion: Lesion, mm: Decimal) -> bool:
    return mm < NORMAL_NODE_SHORT_AXIS_MM if lesion.lymph_node else mm == 0


def best_overall_response(
    assessments: Sequence[AssessmentResponse], baseline_date: dt.date, sd_min_interval_days: int
) -> Response:
    """RECIST 1.1 best overall response (4.4.3) of time-point responses up to the first PD,
    without confirmation; SD counts only `sd_min_interval_days` or more after baseline."""
    considered: list[AssessmentResponse] = []
    for assessment in assessments:
        considered.append(assessment)
        if assessment.overall == Response.PD:
            break
    overall = [assessment.overall for assessment in considered]
    for response in (Response.CR, Response.PR):
        if response in overall:
            return response
    for assessment in considered:
        stable = assessment.overall in (Response.SD, Response.NON_CR_NON_PD)
        if stable and (assessment.date - baseline_date).days >= sd_min_interval_days:
            return assessment.overall
    return Response.PD if Response.PD in overall else Response.NE


def _measurable(lesion: Lesion) -> bool:
    if lesion.diameter_mm is None:
        return False
    limit = MEASURABLE_NODE_SHORT_AXIS_MM if lesion.lymph_node else MEASURABLE_LESION_MM
    return _mm(lesion.diameter_mm) >= limit


def _measurable_rule(lesion: Lesion) -> str:
    if lesion.lymph_node:
        return "a target lymph node needs a short axis >= 15 mm"
    return "a target lesion needs a longest diameter >= 10 mm"


def _organ_key(lesion: Lesion) -> str:
    return LYMPH_NODES_ORGAN if lesion.lymph_node else lesion.organ.strip().casefold()


def _baseline_sum(targets: Sequence[Lesion]) -> Decimal:
    return sum((_mm(lesion.diameter_mm or 0.0) for lesion in targets), Decimal(0))


def _counted_mm(value: TargetValue) -> Decimal | None:
    if value is None:
        return None
    if value == TOO_SMALL:
        return TOO_SMALL_MM
    return _mm(value)


def _mm(value: float) -> Decimal:
    """The measurement as written (shortest repr), so percent thresholds compare exactly."""
    return Decimal(repr(float(value)))


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _change_pct(value: Decimal | None, reference: Decimal | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return float((value - reference) * 100 / reference)


def _check_series(series: Series) -> None:
    lesions = series.baseline.lesions
    if not lesions:
        raise InvalidInputError("baseline.lesions", [], "needs at least one lesion")
    try:
        validate_targets(lesions)
    except InvalidInputError as error:
        raise InvalidInputError(f"baseline.{error.field}", error.value, error.rule) from error
    targets = [lesion for lesion in lesions if lesion.target]
    non_target_ids = {lesion.id for lesion in lesions if not lesion.target}
    previous_date = series.baseline.date
    for index, visit in enumerate(series.follow_up):
        path = f"follow_up[{index}]"
        if visit.date <= previous_date:
            raise InvalidInputError(f"{path}.date", visit.date, f"must be after {previous_date}")
        previous_date = visit.date
        _check_target_measurements(f"{path}.target_mm", targets, visit.target_mm)
        _check_keys(f"{path}.non_target", non_target_ids, visit.non_target, "non-target")
        for key, status in visit.non_target.items():
            _status(f"{path}.non_target.{key}", status)
        if not isinstance(visit.new_lesions, bool):
            raise InvalidInputError(f"{path}.new_lesions", visit.new_lesions, "must be a bool")


def _check_lesion(path: str, lesion: Lesion) -> None:
    if not isinstance(lesion.id, str) or not lesion.id.strip():
        raise InvalidInputError(f"{path}.id", lesion.id, "must be a non-empty string")
    if not isinstance(lesion.organ, str) or not lesion.organ.strip():
        raise InvalidInputError(f"{path}.organ", lesion.organ, "must be a non-empty string")
    for name, flag in (("lymph_node", lesion.lymph_node), ("target", lesion.target)):
        if not isinstance(flag, bool):
            raise InvalidInputError(f"{path}.{name}", flag, "must be a bool")
    if lesion.diameter_mm is not None:
        LESION_DIAMETER_MM.check(f"{path}.diameter_mm", lesion.diameter_mm)


def _check_unique_ids(lesions: Sequence[Lesion]) -> None:
    seen: set[str] = set()
    for index, lesion in enumerate(lesions):
        if lesion.id in seen:
            raise InvalidInputError(f"lesions[{index}].id", lesion.id, "duplicate lesion id")
        seen.add(lesion.id)


def _check_target_measurements(
    path: str, targets: Sequence[Lesion], measurements_mm: Mapping[str, TargetValue]
) -> None:
    _check_keys(path, {lesion.id for lesion in targets}, measurements_mm, "target")
    for key, value in measurements_mm.items():
        if value is None or value == TOO_SMALL:
            continue
        if isinstance(value, str):
            raise InvalidInputError(f"{path}.{key}", value, 'must be mm, "too_small" or null')
        LESION_DIAMETER_MM.check(f"{path}.{key}", value)


def _check_keys(path: str, expected: set[str], given: Mapping[str, object], kind: str) -> None:
    for key in given:
        if key not in expected:
            raise InvalidInputError(f"{path}.{key}", given[key], f"not a baseline {kind} lesion")
    missing = sorted(expected - set(given))
    if missing:
        raise InvalidInputError(
            f"{path}.{missing[0]}", None, f"missing: every baseline {kind} lesion needs an entry"
        )


def _status(path: str, value: object) -> NonTargetStatus:
    if isinstance(value, str) and value in set(NonTargetStatus):
        return NonTargetStatus(value)
    allowed = ", ".join(status.value for status in NonTargetStatus)
    raise InvalidInputError(path, value, f"must be one of {allowed}")


def _parse_lesion(path: str, data: object) -> Lesion:
    fields = _fields(path, data, ("id", "organ", "lymph_node", "diameter_mm", "target"))
    diameter = fields["diameter_mm"]
    return Lesion(
        id=fields["id"],
        organ=fields["organ"],
        lymph_node=fields["lymph_node"],
        diameter_mm=None
        if diameter is None
        else finite_number(f"{path}.diameter_mm", diameter, "mm"),
        target=fields["target"],
    )


def _parse_follow_up(path: str, data: object) -> FollowUp:
    fields = _fields(path, data, ("date", "target_mm", "non_target", "new_lesions"))
    target_mm = _fields(f"{path}.target_mm", fields["target_mm"], None)
    non_target = _fields(f"{path}.non_target", fields["non_target"], None)
    return FollowUp(
        date=_date(f"{path}.date", fields["date"]),
        target_mm={
            key: _target_value(f"{path}.target_mm.{key}", v) for key, v in target_mm.items()
        },
        non_target={key: _status(f"{path}.non_target.{key}", v) for key, v in non_target.items()},
        new_lesions=fields["new_lesions"],
    )


def _target_value(path: str, value: object) -> TargetValue:
    if value is None:
        return None
    if value == TOO_SMALL:
        return TOO_SMALL
    return finite_number(path, value, 'mm (or "too_small" or null)')


def _fields(path: str, data: object, keys: tuple[str, ...] | None) -> dict[str, Any]:
    """`data` as a JSON object with exactly `keys` (any string keys if None)."""
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise InvalidInputError(path, data, "must be a JSON object")
    if keys is not None:
        for key in data:
            if key not in keys:
                raise InvalidInputError(f"{path}.{key}", data[key], "unknown field")
        for key in keys:
            if key not in data:
                raise InvalidInputError(f"{path}.{key}", None, "required field is missing")
    return data


def _list(path: str, data: object) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInputError(path, data, "must be a JSON array")
    return data


def _date(path: str, value: object) -> dt.date:
    if isinstance(value, str) and len(value) == len("YYYY-MM-DD"):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInputError(path, value, "must be an ISO date YYYY-MM-DD")

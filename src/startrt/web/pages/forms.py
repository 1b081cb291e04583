"""Forms of the pages. They only parse what the user typed (numbers, dates, yes/no, choices);
the library and the services judge the values, and their errors are shown next to the field
they name. The record forms are built from the services' own record models, so a form has
exactly the fields the service validates."""

from __future__ import annotations

import enum
import json
import types
from datetime import date
from typing import Any, ClassVar, Union, get_args, get_origin

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model, QuerySet
from django.http import QueryDict
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from startrt import fields
from startrt.clinical.ctcae_terms import (
    GRADES,
    CtcaeTerm,
    closest_term,
    system_organ_classes,
    terms,
)
from startrt.clinical.recist import TOO_SMALL, NonTargetStatus
from startrt.clinical.sex import Sex
from startrt.protocol.screening import ScreeningRecord
from startrt.validation import InvalidInputError, InvalidRecordError, echoed
from startrt.web.events.services import (
    AdverseEventRecord,
    DeathRecord,
    EndOfTreatmentRecord,
    FollowUpRecord,
)
from startrt.web.signing.models import Meaning
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import Membership, Site
from startrt.web.trial.services import ENTRY_ROLES, ConsentRecord

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M"


class IsoDateInput(forms.DateInput):
    """A date typed as YYYY-MM-DD whatever the browser's language (a browser's own date picker
    shows the locale's order, e.g. mm/dd/yyyy in en-US)."""

    def __init__(self, attrs: dict[str, str] | None = None) -> None:
        iso = {
            "placeholder": "YYYY-MM-DD",
            "pattern": r"\d{4}-\d{2}-\d{2}",
            "inputmode": "numeric",
            "size": "10",
            "autocomplete": "off",
        }
        super().__init__({**iso, **(attrs or {})}, format=DATE_FORMAT)


class IsoDateTimeInput(forms.DateTimeInput):
    """A date and time typed as YYYY-MM-DD HH:MM (24 h), whatever the browser's language."""

    def __init__(self, attrs: dict[str, str] | None = None) -> None:
        iso = {
            "placeholder": "YYYY-MM-DD HH:MM",
            "pattern": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}",
            "size": "16",
            "autocomplete": "off",
        }
        super().__init__({**iso, **(attrs or {})}, format=DATETIME_FORMAT)


def date_field(**options: Any) -> forms.DateField:
    """A date field that reads and shows ISO 8601 (YYYY-MM-DD) only."""
    return forms.DateField(widget=IsoDateInput(), input_formats=[DATE_FORMAT], **options)


def datetime_field(**options: Any) -> forms.DateTimeField:
    """A date-time field that reads YYYY-MM-DD HH:MM (or the ISO "T" between) and shows the
    former."""
    formats = [DATETIME_FORMAT, "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
    return forms.DateTimeField(widget=IsoDateTimeInput(), input_formats=formats, **options)


SCREENING_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Visit and consent", ("screening_date", "planned_start_date", "consent_signed")),
    (
        "Patient",
        (
            "age_years",
            "weight_kg",
            "height_cm",
            "ecog",
            "life_expectancy_months",
            "childbearing_potential",
            "highly_effective_contraception",
            "pregnant_or_lactating",
        ),
    ),
    (
        "Tumour and imaging",
        (
            "histology_confirmed_well_differentiated_inoperable_net",
            "primary_site",
            "ki67_percent",
            "pheochromocytoma_or_paraganglioma",
            "krenning_score",
            "lesion_to_liver_suv_ratio",
            "sstr_pet_date",
            "sstr_negative_lesions",
            "fdg_pet_positive",
            "measurable_disease_recist",
            "progression_imaging_date",
            "progression_confirmed_by_mdc",
        ),
    ),
    (
        "Treatment history and plan",
        (
            "prior_non_ssa_therapy",
            "prior_non_ssa_therapy_end_date",
            "prior_prrt",
            "concomitant_non_ssa_systemic_therapy",
            "prrt_treatment_of_choice",
            "dpd_deficiency",
            "capecitabine_other_contraindication",
        ),
    ),
    (
        "Laboratory",
        (
            "hemoglobin_g_l",
            "platelets_10e9_l",
            "leukocytes_10e9_l",
            "neutrophils_10e9_l",
            "ast_u_l",
            "ast_u_l_uln",
            "alt_u_l",
            "alt_u_l_uln",
            "bilirubin_umol_l",
            "bilirubin_umol_l_uln",
            "albumin_g_l",
            "creatinine_umol_l",
            "cystatin_c_mg_l",
            "measured_gfr_ml_min_173",
        ),
    ),
    ("Investigator's judgement", ("serious_uncontrolled_condition", "unable_to_comply")),
)
"""Every ScreeningRecord field but `sex` (the patient's, set at registration), grouped."""


def _value_type(info: FieldInfo) -> Any:
    """The field's type without None: `float | None` -> float."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def _form_field(name: str, info: FieldInfo) -> forms.Field:
    """The form field of a record field: yes/no/unknown for optional booleans, a checkbox for
    required ones, dates, numbers, text, a choice for enumerations, checkboxes for their lists."""
    options: dict[str, Any] = {"required": info.is_required(), "label": fields.label(name)}
    value_type = _value_type(info)
    if value_type is bool:
        if info.is_required():  # unticked is "no": the record always has a value
            return forms.BooleanField(**{**options, "required": False})
        return forms.NullBooleanField(**options)
    if value_type is date:
        return date_field(**options)
    if value_type is int:
        return forms.IntegerField(**options)
    if value_type is float:
        return forms.FloatField(**options)
    if value_type is str:
        return forms.CharField(**{**options, "required": False}, strip=False)
    if isinstance(value_type, type) and issubclass(value_type, enum.Enum):
        return forms.TypedChoiceField(  # the empty choice is "not recorded": None
            choices=[("", "—"), *_choices(value_type)], empty_value=None, **options
        )
    if get_origin(value_type) is list:
        (item,) = get_args(value_type)
        return forms.MultipleChoiceField(
            choices=_choices(item), widget=forms.CheckboxSelectMultiple, **options
        )
    raise TypeError(f"{name}: no form field for {value_type!r}")


def _choices(values: type[enum.Enum]) -> list[tuple[str, str]]:
    return [(item.value, fields.display(item)) for item in values]


class ScreeningForm(forms.Form):
    """The screening record, grouped, with the reason and version a change needs."""

    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required for any change after the first entry.",
    )
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for _, names in SCREENING_GROUPS:
            for name in names:
                self.fields[name] = _form_field(name, ScreeningRecord.model_fields[name])

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """(title, bound fields) per group, in display order."""
        return [(title, [self[name] for name in names]) for title, names in SCREENING_GROUPS]

    def record_data(self) -> dict[str, Any]:
        """The cleaned record fields, as the service takes them."""
        return {name: self.cleaned_data[name] for _, names in SCREENING_GROUPS for name in names}


def entry_sites(user: AbstractBaseUser) -> QuerySet[Site]:
    """Sites where the user may register patients."""
    memberships = Membership.objects.filter(user=user, role__in=ENTRY_ROLES)
    return Site.objects.filter(pk__in=memberships.values("site")).order_by("name")


class RegisterForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none())
    trial_id = forms.CharField(
        label="Trial ID", max_length=32, help_text="S01, the site code, 3 digits: S01-LUN-001"
    )
    sex = forms.ChoiceField(choices=_choices(Sex))

    def __init__(self, user: AbstractBaseUser, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sites = entry_sites(user)
        site_field = self.fields["site"]
        assert isinstance(site_field, forms.ModelChoiceField)
        site_field.queryset = sites
        if len(sites) == 1:
            site_field.initial = sites[0]


def _password_field() -> forms.CharField:
    return forms.CharField(
        label="Your password (electronic signature)",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PasswordForm(forms.Form):
    """An action signed by re-entering the password."""

    password = _password_field()


class SignForm(forms.Form):
    meaning = forms.ChoiceField(choices=Meaning.choices)
    password = _password_field()


class UnlockForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    password = _password_field()


def add_library_errors(form: forms.Form, error: InvalidInputError) -> None:
    """Show the library's message(s) next to the field each names (else above the form)."""
    problems = error.errors if isinstance(error, InvalidRecordError) else [error]
    for problem in problems:
        field = form.fields.get(problem.field)
        shown = field is not None and not field.widget.is_hidden
        secret = field is not None and isinstance(field.widget, forms.PasswordInput)
        text = f"The password entered {problem.rule}" if secret else None
        form.add_error(
            problem.field if shown else None, text or refusal_text(problem, at_field=shown)
        )


def refusal_text(problem: InvalidInputError, *, at_field: bool) -> str:
    """A refusal for people: the value (if any) and the rule, after the field's label and unit
    unless it is shown next to the field itself ("Haemoglobin LLN (g/L) “13.4”: must lie in
    ..."; "Required when the reason is other")."""
    if problem.value in (None, "", [], ()):
        text = problem.rule[:1].upper() + problem.rule[1:]
    else:
        value = problem.value if isinstance(problem.value, str) else fields.display(problem.value)
        text = f"“{echoed(value)}”: {problem.rule}"
    if at_field:
        return text
    name = problem.field.rsplit(".", 1)[-1]
    return f"{fields.label(name)} {text}"


class CorrectionForm(forms.Form):
    """A record's fields, and for a correction after first entry its reason and the version it
    is based on. `RECORD` is the service's record model; the fields follow it."""

    RECORD: ClassVar[type[BaseModel]]
    correction_reason = forms.CharField(
        label="Reason for the correction",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: why the recorded value was wrong.",
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, correction: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.correction = correction
        if not correction:  # first entry: no reason, no version
            del self.fields["correction_reason"], self.fields["expected_version"]
        for name, info in self.RECORD.model_fields.items():
            self.fields[name] = _form_field(name, info)
        self.order_fields([*self.RECORD.model_fields, "correction_reason"])

    def record_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.RECORD.model_fields]

    def record_data(self) -> dict[str, Any]:
        """The cleaned record fields, as the service takes them (empty text as given)."""
        return {name: self.cleaned_data[name] for name in self.RECORD.model_fields}


def record_initial(record: Model, form: type[CorrectionForm]) -> dict[str, Any]:
    """A stored record as a correction form's initial values."""
    values = {name: getattr(record, name) for name in form.RECORD.model_fields}
    return {**values, "expected_version": getattr(record, "version", None)}


class ConsentForm(CorrectionForm):
    RECORD = ConsentRecord


class AdverseEventForm(CorrectionForm):
    """An adverse event with the CTCAE v5.0 term picker: a System Organ Class narrowing the
    terms offered (a filter, not stored), the term typed against the list of terms, the event's
    name for an "Other, specify" term, and the grades the chosen term defines, each labelled
    with the table's description (`ctcae_terms`); without a known term, grades 1-5 plainly."""

    RECORD = AdverseEventRecord
    fields_template = "pages/adverse_event_fields.html"
    PICKER = ("soc", "term", "other_specify", "ctcae_grade")
    SHOW_GRADES = "show_grades"
    """The submit button's name that shows the term's grades without saving (no script)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctcae_term = closest_term(str(self._given("term") or ""))
        socs = [(soc, soc) for soc in system_organ_classes()]
        self.fields["soc"] = forms.ChoiceField(
            label=fields.label("soc"),
            required=False,
            choices=[("", "All"), *socs],
            help_text="Narrows the terms offered.",
        )
        term = self.fields["term"]
        term.widget = forms.TextInput(attrs={"list": "ctcae-terms", "autocomplete": "off"})
        term.help_text = "Type part of a CTCAE v5.0 term and choose it from the list."
        other = self.fields["other_specify"]
        other.help_text = "Only for a “… - Other, specify” term: what the event is."
        self.fields["ctcae_grade"].widget = forms.RadioSelect(choices=self.grade_choices())
        self.order_fields(["soc", *self.RECORD.model_fields, "correction_reason"])
        if self.ctcae_term is not None and not self._given("soc"):
            self.initial["soc"] = self.ctcae_term.soc

    def _given(self, name: str) -> Any:
        """The value of `name` as posted (bound) or as initially shown."""
        return self.data.get(self.add_prefix(name)) if self.is_bound else self.initial.get(name)

    def grade_choices(self) -> list[tuple[int, str]]:
        """The grades of the chosen term with their descriptions, else grades 1-5 plainly."""
        entry = self.ctcae_term
        if entry is None:
            return [(grade, str(grade)) for grade in GRADES]
        return [(grade, f"{grade}: {entry.grades[grade - 1]}") for grade in entry.allowed_grades]

    def term_options(self) -> tuple[CtcaeTerm, ...]:
        """Every term, with its SOC (the page's script narrows them to the SOC chosen)."""
        return terms()

    def other_fields(self) -> list[forms.BoundField]:
        """The visible fields after the picker's."""
        return [field for field in self.visible_fields() if field.name not in self.PICKER]

    @classmethod
    def shown_again(cls, post: QueryDict, **kwargs: Any) -> AdverseEventForm | None:
        """For a POST by the SHOW_GRADES button: the form again, unbound, with the posted values
        as its initial ones (so the chosen term's grades are shown, nothing saved nor refused);
        None for any other POST."""
        if cls.SHOW_GRADES not in post:
            return None
        listed = forms.MultipleChoiceField
        initial = {
            name: post.getlist(name) if isinstance(field, listed) else post.get(name)
            for name, field in cls(**kwargs).fields.items()
            if name in post
        }
        return cls(initial=initial, **kwargs)


class EndOfTreatmentForm(CorrectionForm):
    RECORD = EndOfTreatmentRecord


class FollowUpForm(CorrectionForm):
    RECORD = FollowUpRecord


class DeathForm(CorrectionForm):
    RECORD = DeathRecord


class SeriesForm(forms.Form):
    """A whole RECIST series as JSON (the API's shape): for the first assessment, which defines
    the baseline lesions, and for corrections of the baseline."""

    series = forms.CharField(
        label="RECIST series (JSON)",
        widget=forms.Textarea(attrs={"rows": 12, "class": "mono"}),
        help_text="The series in the API's JSON form (see the API documentation, RECIST series): "
        "the baseline date and lesions (ID, organ, lymph node or not, diameter in mm, target or "
        "not), then each follow-up (date, target diameters in mm, non-target statuses, new "
        "lesions).",
    )
    correction_reason = CorrectionForm.base_fields["correction_reason"]
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, correction: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.correction = correction
        if not correction:
            del self.fields["correction_reason"], self.fields["expected_version"]

    def clean_series(self) -> dict[str, Any]:
        text = self.cleaned_data["series"]
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"not JSON: {error}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object with baseline and follow_up")
        return value

    def series_data(self, stored: dict[str, Any] | None) -> dict[str, Any]:
        series: dict[str, Any] = self.cleaned_data["series"]
        return series


class TargetField(forms.CharField):
    """A target lesion's diameter: mm, "too small" (counted as 5 mm), or empty (not evaluated)."""

    def to_python(self, value: Any) -> float | str | None:
        text = str(super().to_python(value)).strip().lower().replace(" ", "_")
        if not text:
            return None
        if text == TOO_SMALL:
            return TOO_SMALL
        try:
            return float(text)
        except ValueError:
            raise forms.ValidationError(
                f"{value!r}: a diameter in mm, 'too small', or empty for not evaluated"
            ) from None


class TimePointForm(forms.Form):
    """One follow-up time point of a RECIST series: a measurement per baseline target lesion,
    a status per non-target lesion, new lesions. Adds the next time point to the stored series
    or (a correction) replaces its latest one."""

    date = date_field()
    new_lesions = forms.BooleanField(required=False, label="New lesions")
    correction_reason = CorrectionForm.base_fields["correction_reason"]
    expected_version = forms.IntegerField(widget=forms.HiddenInput)
    follow_ups = forms.IntegerField(widget=forms.HiddenInput)  # how many the user saw

    def __init__(
        self, series: dict[str, Any], *args: Any, correction: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.correction = correction
        self.lesions: list[dict[str, Any]] = series["baseline"]["lesions"]
        if correction:
            del self.fields["follow_ups"]
        else:
            del self.fields["correction_reason"], self.fields["expected_version"]
            self.fields["follow_ups"].initial = len(series["follow_up"])
        statuses = [("", "—"), *_choices(NonTargetStatus)]
        for index, lesion in enumerate(self.lesions):
            label = f"{lesion['id']} ({lesion['organ']})"
            if lesion["target"]:
                self.fields[f"target_{index}"] = TargetField(
                    required=False,
                    label=f"{label}, baseline {lesion['diameter_mm']} mm",
                    help_text="mm, or 'too small'; empty: not evaluated",
                )
            else:
                self.fields[f"non_target_{index}"] = forms.ChoiceField(
                    choices=statuses, label=f"{label}, non-target"
                )
        self.order_fields(["date", *self.lesion_names(), "new_lesions", "correction_reason"])

    @staticmethod
    def initial_of(series: dict[str, Any], version: int) -> dict[str, Any]:
        """The latest follow-up of `series` as initial values (a correction of it)."""
        latest = series["follow_up"][-1]
        initial: dict[str, Any] = {
            "date": latest["date"],
            "new_lesions": latest["new_lesions"],
            "expected_version": version,
        }
        for index, lesion in enumerate(series["baseline"]["lesions"]):
            if lesion["target"]:
                value = latest["target_mm"].get(lesion["id"])
                initial[f"target_{index}"] = "" if value is None else str(value)
            else:
                initial[f"non_target_{index}"] = latest["non_target"].get(lesion["id"], "")
        return initial

    def lesion_names(self) -> list[str]:
        return [name for name in self.fields if name.startswith(("target_", "non_target_"))]

    def series_data(self, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The stored series with this time point appended (or, correcting, in place of the
        latest); refused as stale when another time point was added since the form was shown."""
        assert stored is not None
        data = self.cleaned_data
        recorded = len(stored["follow_up"])
        if not self.correction and data["follow_ups"] != recorded:
            raise StaleVersionError(
                "follow_ups", data["follow_ups"], f"the series has {recorded} follow-ups now"
            )
        point = {
            "date": data["date"].isoformat(),
            "target_mm": {},
            "non_target": {},
            "new_lesions": data["new_lesions"],
        }
        for index, lesion in enumerate(self.lesions):
            if lesion["target"]:
                point["target_mm"][lesion["id"]] = data[f"target_{index}"]
            else:
                point["non_target"][lesion["id"]] = data[f"non_target_{index}"]
        earlier = stored["follow_up"][:-1] if self.correction else stored["follow_up"]
        return {"baseline": stored["baseline"], "follow_up": [*earlier, point]}

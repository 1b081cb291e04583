"""Forms of the pages. They only parse what the user typed (numbers, dates, yes/no); the library
judges the values, and its errors are shown next to the field they name."""

from __future__ import annotations

import types
from datetime import date
from typing import Any, Union, get_args, get_origin

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from pydantic.fields import FieldInfo

from startrt.protocol.screening import ScreeningRecord
from startrt.validation import InvalidInputError, InvalidRecordError
from startrt.web.signing.models import Meaning
from startrt.web.trial.models import Membership, Site
from startrt.web.trial.services import ENTRY_ROLES

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

UNITS = (
    ("_ml_min_173", "mL/min/1.73 m²"),
    ("_umol_l", "µmol/L"),
    ("_10e9_l", "10⁹/L"),
    ("_mg_l", "mg/L"),
    ("_g_l", "g/L"),
    ("_u_l", "U/L"),
    ("_kg", "kg"),
    ("_cm", "cm"),
    ("_years", "years"),
    ("_months", "months"),
    ("_percent", "%"),
)
ACRONYMS = frozenset(
    [
        "alt",
        "ast",
        "c",
        "dpd",
        "ecog",
        "fdg",
        "gfr",
        "mdc",
        "net",
        "pet",
        "prrt",
        "recist",
        "ssa",
        "sstr",
        "suv",
    ]
)


def field_label(name: str) -> str:
    """A readable label with the unit: "ast_u_l_uln" -> "AST ULN (U/L)"."""
    stem, scale = (name.removesuffix("_uln"), " ULN") if name.endswith("_uln") else (name, "")
    unit = ""
    for suffix, text in UNITS:
        if stem.endswith(suffix):
            stem, unit = stem.removesuffix(suffix), f" ({text})"
            break
    label = " ".join(word.upper() if word in ACRONYMS else word for word in stem.split("_"))
    label += scale + unit
    return label[:1].upper() + label[1:]


def _value_type(info: FieldInfo) -> Any:
    """The field's type without None: `float | None` -> float."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def _form_field(name: str, info: FieldInfo) -> forms.Field:
    options: dict[str, Any] = {"required": info.is_required(), "label": field_label(name)}
    value_type = _value_type(info)
    if value_type is bool:
        return forms.NullBooleanField(**options)
    if value_type is date:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **options)
    if value_type is int:
        return forms.IntegerField(**options)
    if value_type is float:
        return forms.FloatField(**options)
    raise TypeError(f"ScreeningRecord.{name}: no form field for {value_type!r}")


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
        label="Trial ID", max_length=32, help_text="S01-<site code>-<3 digits>, e.g. S01-LUN-001"
    )
    sex = forms.ChoiceField(choices=[("female", "female"), ("male", "male")])

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
        form.add_error(problem.field if shown else None, str(problem))

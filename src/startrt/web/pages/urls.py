"""Page routes: sign-in (throttled by django-axes), patients, screening, randomization,
signatures and the audit trail."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, path

from startrt.web.pages import (
    account_views,
    admin_views,
    ctcae_views,
    data_lock_views,
    dosimetry_views,
    enrolment_views,
    event_views,
    lab_views,
    medication_views,
    missing_data_views,
    monitoring_views,
    safety_views,
    treatment_views,
    views,
)

app_name = "pages"
urlpatterns: list[URLPattern] = [
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("account/two-factor/", account_views.two_factor_page, name="two_factor"),
    path("account/password/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("logout/", auth_views.LogoutView.as_view(next_page="pages:login"), name="logout"),
    path("", views.patient_list, name="patients"),
    path("data-lock/", data_lock_views.data_lock_page, name="data_lock"),
    path("patients/register/", views.register, name="register"),
    path("patients/<str:trial_id>/", views.patient_page, name="patient"),
    path("patients/<str:trial_id>/screening/", views.enter_screening, name="screening"),
    path("patients/<str:trial_id>/randomize/", views.randomize, name="randomize"),
    path("patients/<str:trial_id>/sign/", views.sign_screening, name="sign_screening"),
    path(
        "patients/<str:trial_id>/signatures/<int:signature_id>/unlock/",
        views.unlock_signature,
        name="unlock",
    ),
    path("patients/<str:trial_id>/audit/", views.audit_trail, name="audit"),
    path("patients/<str:trial_id>/audit.csv", views.audit_csv, name="audit_csv"),
    path("ctcae/term/", ctcae_views.ctcae_term, name="ctcae_term"),
    path("patients/<str:trial_id>/events/", event_views.events_page, name="events"),
    path(
        "patients/<str:trial_id>/events/<slug:kind_slug>/",
        event_views.add_record,
        name="add_record",
    ),
    path(
        "patients/<str:trial_id>/events/<slug:kind_slug>/<int:record_id>/",
        event_views.correct_record,
        name="correct_record",
    ),
]

treatment_urls: list[URLPattern] = [
    path("patients/<str:trial_id>/treatment/", treatment_views.treatment_page, name="treatment"),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/",
        treatment_views.cycle_page,
        name="cycle",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/labs/",
        treatment_views.record_labs,
        name="labs",
    ),
    path("sites/<str:code>/lab-ranges/", lab_views.site_lab_ranges, name="lab_ranges"),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/release/",
        treatment_views.release,
        name="release",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/administration/",
        treatment_views.administer,
        name="administration",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/dosimetry/",
        treatment_views.dosimetry,
        name="dosimetry",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/release/unlock/",
        treatment_views.unlock_release,
        name="unlock_release",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/reschedule/",
        treatment_views.reschedule,
        name="reschedule",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/cancel/",
        treatment_views.cancel,
        name="cancel_cycle",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/study/",
        dosimetry_views.study,
        name="study",
    ),
    path(
        "patients/<str:trial_id>/treatment/study-jobs/<int:job_id>/",
        dosimetry_views.study_job,
        name="study_job",
    ),
    path(
        "patients/<str:trial_id>/treatment/study-jobs/<int:job_id>/figures/<str:name>.png",
        dosimetry_views.study_figure,
        name="study_figure",
    ),
    path(
        "patients/<str:trial_id>/treatment/capecitabine/",
        treatment_views.capecitabine_page,
        name="capecitabine",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/capecitabine/",
        treatment_views.prescribe,
        name="prescribe",
    ),
    path(
        "patients/<str:trial_id>/treatment/cycles/<int:number>/capecitabine/dispense/",
        treatment_views.dispense,
        name="dispense",
    ),
    path("patients/<str:trial_id>/treatment/propose/", treatment_views.propose, name="propose"),
    path(
        "patients/<str:trial_id>/treatment/proposals/<int:proposal_id>/accept/",
        treatment_views.accept,
        name="accept",
    ),
    path(
        "patients/<str:trial_id>/treatment/proposals/<int:proposal_id>/override/",
        treatment_views.override,
        name="override",
    ),
    path(
        "patients/<str:trial_id>/treatment/deviations/<int:deviation_id>/sign/",
        treatment_views.sign_deviation,
        name="sign_deviation",
    ),
    path(
        "patients/<str:trial_id>/treatment/adverse-events/",
        treatment_views.report_adverse_event,
        name="adverse_event",
    ),
]
urlpatterns += treatment_urls

monitoring_urls: list[URLPattern] = [
    path("queries/", monitoring_views.query_report, name="queries"),
    path("sdv/", monitoring_views.sdv_page, name="sdv"),
    path(
        "patients/<str:trial_id>/monitoring/",
        monitoring_views.patient_monitoring,
        name="monitoring",
    ),
    path(
        "patients/<str:trial_id>/monitoring/<str:record_type>/<int:record_id>/verify/",
        monitoring_views.verify_record,
        name="verify",
    ),
    path(
        "patients/<str:trial_id>/monitoring/<str:record_type>/<int:record_id>/query/",
        monitoring_views.raise_query,
        name="raise_query",
    ),
    path(
        "patients/<str:trial_id>/queries/<int:query_id>/",
        monitoring_views.query_page,
        name="query",
    ),
]
urlpatterns += monitoring_urls
urlpatterns.append(path("missing-data/", missing_data_views.missing_data, name="missing_data"))

user_admin_urls: list[URLPattern] = [
    path("users/", admin_views.user_list, name="users"),
    path("users/new/", admin_views.new_user, name="new_user"),
    path("users/<int:user_id>/", admin_views.user_page, name="user"),
    path(
        "users/<int:user_id>/roles/<int:membership_id>/remove/",
        admin_views.remove_role,
        name="remove_role",
    ),
]
urlpatterns += user_admin_urls
urlpatterns += [path("enrolment/", enrolment_views.enrolment, name="enrolment")]

medication_urls: list[URLPattern] = [
    path(
        "patients/<str:trial_id>/medications/",
        medication_views.medications_page,
        name="medications",
    ),
    path(
        "patients/<str:trial_id>/medications/add/",
        medication_views.add_medication,
        name="add_medication",
    ),
    path(
        "patients/<str:trial_id>/medications/check/",
        medication_views.reassess,
        name="reassess_medications",
    ),
    path(
        "patients/<str:trial_id>/medications/<int:medication_id>/",
        medication_views.change_medication,
        name="change_medication",
    ),
    path(
        "patients/<str:trial_id>/medications/<int:medication_id>/stop/",
        medication_views.stop_medication,
        name="stop_medication",
    ),
    path(
        "patients/<str:trial_id>/medication-deviations/<int:deviation_id>/acknowledge/",
        medication_views.acknowledge_deviation,
        name="acknowledge_medication_deviation",
    ),
]
urlpatterns += medication_urls

safety_urls: list[URLPattern] = [
    path("safety/", safety_views.sae_list, name="safety"),
    path(
        "patients/<str:trial_id>/safety/events/<int:event_id>/",
        safety_views.open_sae,
        name="open_sae",
    ),
    path("patients/<str:trial_id>/safety/<int:case_id>/", safety_views.sae_case, name="sae"),
    path(
        "patients/<str:trial_id>/safety/<int:case_id>/reports/",
        safety_views.submit_report,
        name="sae_report",
    ),
    path(
        "patients/<str:trial_id>/safety/<int:case_id>/awareness/",
        safety_views.correct_awareness,
        name="sae_awareness",
    ),
    path(
        "patients/<str:trial_id>/safety/<int:case_id>/reports/<int:number>/notify/",
        safety_views.resend_notification,
        name="sae_notify",
    ),
]
urlpatterns += safety_urls

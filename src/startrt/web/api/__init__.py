"""The JSON API (django-ninja, OpenAPI 3): one NinjaAPI; each part of the trial adds a router.

Every operation needs a logged-in Django session (`django_auth`); being cookie based, it also
checks the CSRF token (X-CSRFToken header) on unsafe methods. The schema (/api/openapi.json)
and the docs (/api/docs) need the login too. The docs page is django-ninja's Swagger UI from its
own static files (served by the application: "ninja" is an installed app), never from a CDN, so it
works offline and under the Content-Security-Policy (no inline script)."""

from __future__ import annotations

from ninja import NinjaAPI, Swagger
from ninja.security import django_auth

from startrt.web.api import errors
from startrt.web.api.events import router as events_router
from startrt.web.api.medications import router as medications_router
from startrt.web.api.treatment import router as treatment_router
from startrt.web.api.trial import router as trial_router


class ApiDocs(Swagger):
    """Swagger UI in a page of the site (pages/api_docs.html): a language, a main landmark and
    text of WCAG 2.1 AA contrast; without deep links, which Swagger UI nests inside buttons."""

    template = "pages/api_docs.html"


api = NinjaAPI(
    title="startrt",
    version="1",
    urls_namespace="api",
    auth=django_auth,
    docs=ApiDocs(
        settings={"persistAuthorization": False, "tryItOutEnabled": False, "deepLinking": False}
    ),
    docs_decorator=errors.docs_login_required,
)
errors.install(api)
api.add_router("/", trial_router)
api.add_router("/", treatment_router)
api.add_router("/", events_router)
api.add_router("/", medications_router)

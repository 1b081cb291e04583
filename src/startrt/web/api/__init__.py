"""The JSON API (django-ninja, OpenAPI 3): one NinjaAPI; each part of the trial adds a router."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(title="startrt", version="1", urls_namespace="api")

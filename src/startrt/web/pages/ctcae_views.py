"""One CTCAE v5.0 term as JSON, for the adverse-event forms' term picker (`ctcae_picker.js`):
its SOC, MedDRA code, definition, navigational note, whether it takes an "Other, specify" name,
and the grades it defines with their descriptions. The table is public (NCI); the pages are
for signed-in users only, so is this."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from startrt.clinical.ctcae_terms import CTCAE_VERSION, lookup
from startrt.validation import InvalidInputError


@require_GET
@login_required
def ctcae_term(request: HttpRequest) -> JsonResponse:
    """`?term=` spelled as CTCAE v5.0 spells it; 404 for any other text."""
    try:
        entry = lookup(request.GET.get("term", ""))
    except InvalidInputError as error:
        raise Http404(error.rule) from None
    return JsonResponse(
        {
            "version": CTCAE_VERSION,
            "term": entry.term,
            "soc": entry.soc,
            "meddra_code": entry.meddra_code,
            "definition": entry.definition,
            "navigational_note": entry.navigational_note,
            "other_specify": entry.other_specify,
            "grades": [
                {"grade": grade, "description": entry.grades[grade - 1]}
                for grade in entry.allowed_grades
            ],
        }
    )

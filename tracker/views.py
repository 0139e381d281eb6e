"""Staff pages. Each view parses input, asks permissions and workflow, and renders."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from tracker import permissions


@login_required
def home(request):
    recommendations = permissions.visible_recommendations(request.user).with_related().filter(owner=request.user)
    return render(request, "tracker/home.html", {"recommendations": recommendations, "today": timezone.localdate()})


@login_required
def inspection_detail(request, pk: int):
    inspection = get_object_or_404(permissions.visible_inspections(request.user), pk=pk)
    findings = inspection.findings.select_related("recommendation").order_by("kind", "reference")
    return render(request, "tracker/inspection.html", {"inspection": inspection, "findings": findings})


@login_required
def recommendation_detail(request, pk: int):
    recommendation = get_object_or_404(permissions.visible_recommendations(request.user).with_related(), pk=pk)
    return render(
        request,
        "tracker/recommendation.html",
        {"recommendation": recommendation, "events": recommendation.events.select_related("actor")},
    )

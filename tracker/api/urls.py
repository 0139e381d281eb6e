from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from tracker.api import outcomes, views

app_name = "api"

router = SimpleRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("inspections", views.InspectionViewSet, basename="inspection")
router.register("findings", views.FindingViewSet, basename="finding")
router.register("recommendations", views.RecommendationViewSet, basename="recommendation")
router.register("updates", views.ProgressUpdateViewSet, basename="update")
router.register("evidence", views.EvidenceViewSet, basename="evidence")
router.register("reminders", views.ReminderViewSet, basename="reminder")
# Issue 16: the action plan and outcome measures.
router.register("plan-actions", outcomes.PlanActionViewSet, basename="plan-action")
router.register("measures", outcomes.MeasureViewSet, basename="measure")
router.register("measure-data", outcomes.DataPointViewSet, basename="measure-data")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(router.urls)),
    re_path(r"^(?P<unmatched>.*)$", views.not_found),
]

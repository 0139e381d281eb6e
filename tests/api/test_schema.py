"""The OpenAPI schema tells the truth: Schemathesis drives every operation as a governance lead over the
real seeds, and every response must be documented and match its schema. Also: the docs are served from
our own static files, and the schema itself is valid and complete."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.factories import EvidenceFactory, UserFactory
from tests.one_rule import MEASURE, last_periods
from tracker import workflow
from tracker.models import (
    Evidence,
    MeasureDataPoint,
    Organisation,
    OutcomeMeasure,
    PlanAction,
    ProgressUpdate,
    Recommendation,
    Reminder,
)
from tracker.permissions import Role
from tracker.seeding import seed

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def seeded_lead(db, settings):
    """The real seeds, a governance lead with a token, and a little of everything for the lists to show."""
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    call_command("loaddata", "groups", verbosity=0)
    seed()
    cleveland = Organisation.objects.get(slug="cleveland-police")
    lead = UserFactory(username="gl", organisation=cleveland, roles=[Role.GOVERNANCE_LEAD])
    owner = UserFactory(username="owner", organisation=cleveland, roles=[Role.OWNER])
    for rec in Recommendation.objects.filter(finding__inspection__organisation=cleveland)[:5]:
        workflow.assign_owner(rec, by=lead, owner=owner)
        workflow.post_update(rec, by=owner, narrative="Audit started", rag="amber")
        EvidenceFactory(recommendation=rec, added_by=owner)
        Reminder.objects.create(recommendation=rec, recipient=owner, stage="due_soon", review_due=rec.next_review_due)
    # Issue 16: a plan action, a measure and a data point for the plan and measure endpoints to reach.
    workflow.add_plan_action(rec, by=lead, description="Audit", owner=owner, due_date=dt.date(2027, 1, 31))
    measure = workflow.add_measure(rec, by=lead, supplier=owner, **MEASURE)
    workflow.enter_measure_data(measure, by=owner, period=last_periods(1)[0], value=80)
    return lead


@pytest.fixture
def auth(seeded_lead) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=seeded_lead)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture
def wsgi_app(db):
    # Django's own test client does the same: closing "old" connections at the end of each request
    # would end the test's transaction under it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app, auth):
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=auth)


@pytest.fixture
def real_ids(seeded_lead) -> dict[str, int]:
    """One existing id per collection, so that generated requests also reach real objects, not only 404s."""
    evidence = Evidence.objects.filter(recommendation__owner__isnull=False).first()
    others = (
        Recommendation.objects.filter(finding__inspection__organisation_id=seeded_lead.organisation_id)
        .exclude(pk=evidence.recommendation_id)
        .values_list("pk", flat=True)[:2]
    )
    return {
        "organisations": seeded_lead.organisation_id,
        "inspections": evidence.recommendation.finding.inspection_id,
        "findings": evidence.recommendation.finding_id,
        "recommendations": evidence.recommendation_id,
        "updates": ProgressUpdate.objects.first().pk,
        "evidence": evidence.pk,
        "reminders": Reminder.objects.first().pk,
        "plan-actions": PlanAction.objects.first().pk,
        "measures": OutcomeMeasure.objects.first().pk,
        "measure-data": MeasureDataPoint.objects.first().pk,
        # Actions on the recommendation above may close or supersede it; new updates and evidence go
        # to one that nothing else touches, and a supersede points at a third.
        **dict(zip(["fresh_recommendation", "replacement"], others, strict=True)),
    }


def steer_to_real_objects(case, real_ids: dict[str, int]) -> None:
    """Point valid bodies at a real recommendation and its current version, so that writes can succeed.

    Left alone, generated ids and versions almost never match a row, and every write would stop at a
    400, 404 or 412 without ever reaching the workflow or producing a success body to check.
    """
    if not isinstance(case.body, dict):
        return
    if "recommendation" in case.body:
        case.body["recommendation"] = real_ids["fresh_recommendation"]
    if "replacement" in case.body:
        case.body["replacement"] = real_ids["replacement"]
    if "version" in case.body:
        target = case.body.get("recommendation") or case.path_parameters.get("id")
        current = Recommendation.objects.filter(pk=target).values_list("version", flat=True).first()
        if current is not None:
            case.body["version"] = current


def explore(strategy, auth: dict, steer: dict | None, answered: set) -> None:
    @given(case=strategy)
    @hypothesis_settings(
        max_examples=6, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def run(case):
        if steer:
            steer_to_real_objects(case, steer)
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        answered.add((case.method, case.path, response.status_code))

    run()


def test_every_operation_answers_as_its_schema_says(api_schema, auth, real_ids):
    # One hypothesis run per operation, mode and id: valid and invalid input, random and real ids.
    failures, runs, answered = [], 0, set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        collection = operation.path.split("/")[2]
        real = {"id": real_ids[collection]} if "{id}" in operation.path else None
        # Valid input at a random id and at a real one (steered to real objects); invalid input once.
        variants = [(GenerationMode.POSITIVE, real, real_ids), (GenerationMode.NEGATIVE, real, None)]
        if real:
            variants.append((GenerationMode.POSITIVE, None, None))
        for mode, path_parameters, steer in variants:
            runs += 1
            try:
                explore(
                    operation.as_strategy(generation_mode=mode, path_parameters=path_parameters), auth, steer, answered
                )
            except Unsatisfiable:
                pass  # nothing invalid to generate (e.g. a GET with only optional, free-text parameters)
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    assert runs >= 70
    # The run reached real objects and real successes, not only refusals.
    successes = {(method, path) for method, path, code in answered if code < 300}
    for expected in [
        ("GET", "/api/recommendations/{id}/"),
        ("PATCH", "/api/recommendations/{id}/"),
        ("POST", "/api/recommendations/{id}/change-target-date/"),
        ("POST", "/api/updates/"),
        ("GET", "/api/reminders/{id}/"),
    ]:
        assert expected in successes, sorted(successes)
    assert {code for _, _, code in answered} >= {200, 201, 400, 404, 409}


def test_the_schema_covers_every_endpoint_and_is_valid_openapi(lead_api):
    response = lead_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    document = response.json()
    validate_schema(document)
    paths = set(document["paths"])
    for collection in (
        "organisations",
        "inspections",
        "findings",
        "recommendations",
        "updates",
        "evidence",
        "reminders",
    ):
        assert {f"/api/{collection}/", f"/api/{collection}/{{id}}/"} <= paths
    for action in (
        "submit",
        "accept",
        "reject",
        "reopen",
        "supersede",
        "change-target-date",
        "assign-owner",
        "change-review-interval",
    ):
        assert f"/api/recommendations/{{id}}/{action}/" in paths
    for operations in document["paths"].values():
        for method, operation in operations.items():
            assert "401" in operation["responses"], method
            assert {"tokenAuth": []} in operation["security"]
            assert {} not in operation["security"], "no operation may be anonymous"  # fmt: skip


def test_the_schema_is_not_public(db):
    assert APIClient().get("/api/schema/").status_code == 401


def test_the_docs_load_swagger_ui_from_our_own_static_files(lead, client):
    client.force_login(lead)

    page = client.get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page
    assert "/api/schema/" in page


def test_redoc_is_served_from_our_own_static_files_too(lead, client):
    client.force_login(lead)

    page = client.get("/api/redoc/").content.decode()

    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in page
    assert "cdn.jsdelivr.net" not in page


def test_an_unknown_api_address_is_a_json_404(lead_api):
    response = lead_api.get("/api/nothing-here/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"

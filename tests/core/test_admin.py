"""The admin: every page renders for a governance lead; a viewer changes nothing; guards hold."""

import re

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from tests.factories import EvidenceFactory, UserFactory
from tracker import workflow
from tracker.models import Organisation, ProgressUpdate, Recommendation, RecommendationEvent
from tracker.permissions import Role
from tracker.seeding import seed


@pytest.fixture
def cleveland(db):
    call_command("loaddata", "groups", verbosity=0)
    seed()
    return Organisation.objects.get(slug="cleveland-police")


@pytest.fixture
def admin_lead(cleveland):
    return UserFactory(username="gl", organisation=cleveland, roles=[Role.GOVERNANCE_LEAD], is_staff=True)


@pytest.fixture
def admin_viewer(cleveland):
    return UserFactory(username="scrutiny", organisation=cleveland, roles=[Role.VIEWER], is_staff=True)


@pytest.fixture
def worked_example(cleveland, admin_lead):
    """A recommendation with an owner, an update and evidence, so every model has a row."""
    owner = UserFactory(username="dci", organisation=cleveland, roles=[Role.OWNER])
    rec = Recommendation.objects.with_related().get(finding__reference="OBS3", finding__inspection__tracked=True)
    workflow.assign_owner(rec, by=admin_lead, owner=owner)
    workflow.post_update(rec, by=owner, narrative="Ethnicity field added to the missing-person form.")
    workflow.add_evidence(rec, by=owner, kind="note", category="output", description="Form change", note="Live")
    return rec


def admin_urls(obj_for):
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        yield model, model_admin, reverse("admin:{}_{}_changelist".format(*info)), "changelist"
        yield model, model_admin, reverse("admin:{}_{}_add".format(*info)), "add"
        obj = obj_for(model)
        if obj is not None:
            yield model, model_admin, reverse("admin:{}_{}_change".format(*info), args=[obj.pk]), "change"
            yield model, model_admin, reverse("admin:{}_{}_history".format(*info), args=[obj.pk]), "history"


def test_every_admin_page_renders_for_a_governance_lead(client, admin_lead, worked_example):
    call_command("setup_schedule", verbosity=0)  # so the beat schedule pages have rows too
    client.force_login(admin_lead)
    checked = 0
    for _model, model_admin, url, kind in admin_urls(lambda m: m._default_manager.order_by("pk").first()):
        response = client.get(url)
        if kind == "add" and not model_admin.has_add_permission(_request(admin_lead)):
            assert response.status_code == 403, url
            continue
        assert response.status_code == 200, f"{url} gave {response.status_code}"
        checked += 1
    assert checked > 30


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_the_recommendation_list_shows_what_a_lead_scans(client, admin_lead, worked_example):
    client.force_login(admin_lead)
    response = client.get(reverse("admin:tracker_recommendation_changelist"), {"review": "overdue"})
    assert response.status_code == 200
    response = client.get(reverse("admin:tracker_recommendation_changelist"), {"q": "OBS3"})
    content = response.content.decode()
    assert ("OBS3" in content and "dci" in content.lower()) or worked_example.owner.get_full_name() in content
    for column in ("Ref", "Owner", "Status", "RAG", "Next review due", "Overdue"):
        assert column in content


def test_a_viewer_can_change_nothing_through_the_admin(client, admin_viewer, worked_example):
    client.force_login(admin_viewer)
    rec = worked_example
    url = reverse("admin:tracker_recommendation_change", args=[rec.pk])
    assert client.get(url).status_code == 200  # may look

    before = (rec.title, rec.owner_id, rec.status, rec.version)
    response = client.post(url, {"title": "Hijacked", "outcome_measure": "", "review_interval_days": 1})
    assert response.status_code == 403
    rec.refresh_from_db()
    assert (rec.title, rec.owner_id, rec.status, rec.version) == before

    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        assert client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 403, model
    assert client.post(
        reverse("admin:tracker_recommendation_changelist"),
        {"action": "assign_owner", "_selected_action": [rec.pk], "owner": admin_viewer.pk},
    ).status_code in (200, 302, 403)
    rec.refresh_from_db()
    assert rec.owner_id == before[1]


def test_a_lead_of_another_organisation_sees_nothing_of_ours(client, worked_example, db):
    call_command("loaddata", "groups", verbosity=0)
    elsewhere = Organisation.objects.create(slug="elsewhere", name="Elsewhere")
    outsider = UserFactory(username="out", organisation=elsewhere, roles=[Role.GOVERNANCE_LEAD], is_staff=True)
    client.force_login(outsider)
    response = client.get(reverse("admin:tracker_recommendation_changelist"))
    assert worked_example.title not in response.content.decode()
    response = client.get(reverse("admin:tracker_recommendation_change", args=[worked_example.pk]))
    assert response.status_code == 302  # the admin redirects a missing object to the index with a message


def change_data(rec, client=None, **overrides):
    """What the change form would post: its hidden fields (inline management forms) plus ours."""
    data = {}
    if client is not None:
        page = client.get(reverse("admin:tracker_recommendation_change", args=[rec.pk])).content.decode()
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
            data[name] = value
    data |= {
        "title": rec.title,
        "outcome_measure": rec.outcome_measure,
        "owner": rec.owner_id or "",
        "target_date": rec.target_date or "",
        "review_interval_days": rec.review_interval_days,
        "workflow_action": "",
        "replacement": "",
        "reason": "",
        "loaded_version": rec.version,
    }
    data.update(overrides)
    return data


def test_a_status_change_in_the_admin_goes_through_the_workflow_guards(client, admin_lead, worked_example):
    client.force_login(admin_lead)
    rec = worked_example
    url = reverse("admin:tracker_recommendation_change", args=[rec.pk])

    response = client.post(url, change_data(rec, client, workflow_action="reopen", reason="Because"))

    assert response.status_code == 200
    assert "Only a closed recommendation can be reopened." in response.content.decode()
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.IN_PROGRESS

    response = client.post(url, change_data(rec, client, workflow_action="submit"))
    assert response.status_code == 302
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.AWAITING_ASSURANCE
    assert rec.events.filter(action=RecommendationEvent.Action.SUBMITTED, actor=admin_lead).exists()


def test_moving_a_target_date_in_the_admin_needs_a_reason(client, admin_lead, worked_example):
    client.force_login(admin_lead)
    rec = worked_example
    workflow.change_target_date(rec, by=admin_lead, target_date="2026-03-31")
    rec.refresh_from_db()
    url = reverse("admin:tracker_recommendation_change", args=[rec.pk])

    response = client.post(url, change_data(rec, client, target_date="2026-09-30"))
    assert "Give a reason for moving the target date." in response.content.decode()
    rec.refresh_from_db()
    assert str(rec.target_date) == "2026-03-31"

    response = client.post(url, change_data(rec, client, target_date="2026-09-30", reason="Audit capacity"))
    assert response.status_code == 302
    rec.refresh_from_db()
    assert str(rec.target_date) == "2026-09-30"


def test_a_stale_admin_form_is_refused(client, admin_lead, worked_example):
    client.force_login(admin_lead)
    rec = worked_example
    stale = change_data(rec, client, title="My edit")
    workflow.edit_details(rec, by=admin_lead, title="Someone else's edit", outcome_measure="")

    response = client.post(reverse("admin:tracker_recommendation_change", args=[rec.pk]), stale)

    assert "changed by someone else" in response.content.decode()
    rec.refresh_from_db()
    assert rec.title == "Someone else's edit"


def test_bulk_assign_owner_and_review_interval(client, admin_lead, cleveland):
    client.force_login(admin_lead)
    owner = UserFactory(username="newowner", organisation=cleveland, roles=[Role.OWNER])
    recs = list(Recommendation.objects.filter(finding__reference__in=["OBS5", "OBS6"]).values_list("pk", flat=True))
    url = reverse("admin:tracker_recommendation_changelist")

    client.post(url, {"action": "assign_owner", "_selected_action": recs, "owner": owner.pk, "index": 0})
    client.post(url, {"action": "set_review_interval", "_selected_action": recs, "interval_days": 14, "index": 0})

    for rec in Recommendation.objects.filter(pk__in=recs):
        assert (rec.owner, rec.review_interval_days) == (owner, 14)
        assert rec.events.filter(action=RecommendationEvent.Action.OWNER_CHANGED).exists()


def test_nothing_can_be_deleted_in_the_admin(client, admin_lead, worked_example):
    client.force_login(admin_lead)
    url = reverse("admin:tracker_recommendation_delete", args=[worked_example.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Recommendation.objects.filter(pk=worked_example.pk).exists()
    assert ProgressUpdate.objects.count() == 1


def test_hostile_text_is_escaped_in_the_admin(client, admin_lead, worked_example):
    client.force_login(admin_lead)
    EvidenceFactory(recommendation=worked_example, description="<script>alert(1)</script>{{ 7|add:1 }}", note="x")
    response = client.get(reverse("admin:tracker_recommendation_change", args=[worked_example.pk]))
    content = response.content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7|add:1 }}" in content


def test_theme_counts_are_of_our_own_findings_in_a_fixed_number_of_queries(
    client, admin_lead, cleveland, django_assert_max_num_queries
):
    from tests.factories import FindingFactory
    from tracker.models import Theme

    missing = Theme.objects.get(slug="missing-children")
    ours = missing.findings.filter(inspection__organisation=cleveland).count()
    elsewhere = Organisation.objects.create(slug="elsewhere", name="Elsewhere")
    for _ in range(3):
        FindingFactory(inspection__organisation=elsewhere).themes.add(missing)
    client.force_login(admin_lead)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:tracker_theme_changelist"))

    row = re.search(r"Missing children</a></th><td[^>]*>[^<]*</td><td[^>]*>(\d+)</td>", response.content.decode())
    assert row is not None
    assert int(row.group(1)) == ours

"""The admin: every page renders for a governance lead; a viewer changes nothing; guards hold."""

import datetime as dt
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
        if not model_admin.has_view_permission(_request(admin_lead)):
            assert response.status_code == 403, url  # the reminder schedule: the operator's alone
            continue
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
    response = client.post(
        reverse("admin:tracker_recommendation_changelist"),
        {"action": "assign_owner", "_selected_action": [rec.pk], "owner": admin_viewer.pk, "index": 0},
    )
    assert response.status_code == 403  # a viewer is offered no action, so any action posted is refused
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
    assert response.status_code == 404  # the same as an id that does not exist


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
    workflow.change_target_date(rec, by=admin_lead, target_date=dt.date(2026, 3, 31))
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


# Isolation and the one rule in the admin. These use the shared personas: lead, rita, olly, otto, vic of
# Cleveland Police, and mallory, a governance lead of Elsewhere Constabulary.


@pytest.fixture
def role_permissions(db):
    """The role groups with their real model permissions, as the admin needs them."""
    call_command("loaddata", "groups", verbosity=0)


@pytest.fixture
def operator(db):
    """The platform operator: a superuser of no organisation."""
    return UserFactory(username="operator", organisation=None, is_staff=True, is_superuser=True)


@pytest.fixture
def ours(role_permissions, rec, lead, olly):
    """Our recommendation, owned by olly, with a target date, an update and a piece of evidence."""
    workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 9, 30))
    workflow.post_update(rec, by=olly, narrative="Started the audit.")
    workflow.add_evidence(rec, by=olly, kind="note", category="output", description="Audit plan", note="Plan")
    rec.refresh_from_db()
    return rec


@pytest.fixture
def theirs(role_permissions, other_org, mallory):
    """Elsewhere's recommendation, its owner and its inspection, each named so a leak is easy to see."""
    from tests.factories import RecommendationFactory

    owner = UserFactory(username="elsewhere-owner", organisation=other_org, roles=[Role.OWNER], first_name="Eloise")
    return RecommendationFactory(
        finding__inspection__organisation=other_org,
        finding__inspection__title="Elsewhere inspection of missing children",
        owner=owner,
    )


def post_action(client, action, recs, **data):
    return client.post(
        reverse("admin:tracker_recommendation_changelist"),
        {"action": action, "_selected_action": [rec.pk for rec in recs], "index": 0, **data},
        follow=True,
    )


def page_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# History: scoped, read-only.


def test_a_lead_of_another_organisation_cannot_read_our_history(client, ours, mallory):
    client.force_login(mallory)
    record = ours.history.first()

    assert client.get(reverse("admin:tracker_recommendation_history", args=[ours.pk])).status_code == 404
    version = reverse("admin:tracker_recommendation_simple_history", args=[ours.pk, record.history_id])
    assert client.get(version).status_code == 404
    assert client.get(reverse("admin:tracker_user_history", args=[ours.owner_id])).status_code == 404


def test_a_past_version_can_be_read(client, ours, lead):
    client.force_login(lead)
    oldest = ours.history.earliest("history_date")

    response = client.get(reverse("admin:tracker_recommendation_simple_history", args=[ours.pk, oldest.history_id]))

    assert response.status_code == 200
    assert "they cannot be restored" in response.content.decode()
    assert b"<form" not in response.content.split(b'id="content-main"')[1]


def test_revert_is_off_so_posting_a_past_version_changes_nothing(client, ours, lead, olly):
    client.force_login(lead)
    user_version = olly.history.first()
    rec_version = ours.history.earliest("history_date")
    before = (olly.email, ours.version, ours.target_date)

    user_post = client.post(
        reverse("admin:tracker_user_simple_history", args=[olly.pk, user_version.history_id]),
        {"username": olly.username, "email": "hijacked@example.org", "_change_history": "1"},
    )
    rec_post = client.post(
        reverse("admin:tracker_recommendation_simple_history", args=[ours.pk, rec_version.history_id]),
        {"title": "Reverted", "target_date": "", "loaded_version": ours.version, "_change_history": "1"},
    )

    assert (user_post.status_code, rec_post.status_code) == (403, 403)
    olly.refresh_from_db()
    ours.refresh_from_db()
    assert (olly.email, ours.version, ours.target_date) == before


# List filters: only the lookups the page declares.


@pytest.mark.parametrize(
    "lookup",
    ["auth_token__key__startswith", "password__startswith", "email__startswith", "organisation__name__startswith"],
)
def test_a_list_refuses_lookups_it_does_not_declare(client, role_permissions, lead, lookup):
    client.force_login(lead)

    response = client.get(reverse("admin:tracker_user_changelist"), {lookup: "a"})

    assert response.status_code == 400


def test_a_list_accepts_the_lookups_of_its_own_filters(client, role_permissions, lead, olly):
    client.force_login(lead)

    response = client.get(
        reverse("admin:tracker_user_changelist"),
        {"is_active__exact": "1", "organisation__id__exact": lead.organisation_id},
    )

    assert response.status_code == 200
    assert olly in response.context["cl"].result_list


# Choices: only our organisation's people and records.


def test_the_bulk_owner_choices_are_our_eligible_owners(client, ours, theirs, lead, olly, otto, vic):
    client.force_login(lead)

    response = client.get(reverse("admin:tracker_recommendation_changelist"))

    offered = {value for value, _label in response.context["action_form"].fields["owner"].widget.choices if value}
    assert offered == {lead.pk, olly.pk, otto.pk}  # not vic (a viewer), not Elsewhere's owner
    assert "Eloise" not in response.content.decode()


def _autocomplete(client, field: str, term: str = "") -> set[int]:
    params = {"app_label": "tracker", "model_name": "recommendation", "field_name": field, "term": term}
    response = client.get(reverse("admin:autocomplete"), params)
    assert response.status_code == 200
    return {int(row["id"]) for row in response.json()["results"]}


def test_owners_findings_and_replacements_are_searched_for_only_among_what_the_field_accepts(
    client, ours, theirs, lead, olly, otto, vic, org
):
    from tests.factories import FindingFactory, RecommendationFactory

    free = FindingFactory(inspection=ours.finding.inspection, reference="AFI7")
    other = RecommendationFactory(finding__inspection=ours.finding.inspection)
    gone = RecommendationFactory(finding__inspection=ours.finding.inspection)
    workflow.supersede(gone, by=lead, replacement=other, reason="Merged")
    client.force_login(lead)

    assert _autocomplete(client, "owner") == {lead.pk, olly.pk, otto.pk}  # not vic (a viewer), not Eloise
    assert _autocomplete(client, "finding") == {free.pk}  # one recommendation per finding; ours only
    assert _autocomplete(client, "superseded_by") == {ours.pk, other.pk}  # not the replaced one, not theirs


def test_the_admins_forms_list_no_owners_findings_or_recommendations(client, ours, lead, olly, org):
    """Thousands of owners, findings and recommendations must not each become an <option> or an inline row
    on a page: the change and add forms stay the same size, and the list names only the people of its rows."""
    from tests.factories import FindingFactory, RecommendationFactory

    client.force_login(lead)
    inspection = ours.finding.inspection
    forms = [
        reverse("admin:tracker_recommendation_change", args=[ours.pk]),
        reverse("admin:tracker_recommendation_add"),
        reverse("admin:tracker_inspection_change", args=[inspection.pk]),
        reverse("admin:tracker_user_change", args=[olly.pk]),
    ]
    findings = inspection.findings.count()
    before = [len(client.get(url).content) for url in forms]
    UserFactory.create_batch(25, organisation=org, roles=[Role.OWNER], last_name="Unassigned")
    FindingFactory.create_batch(25, inspection=ours.finding.inspection)
    RecommendationFactory.create_batch(25, finding__inspection=ours.finding.inspection, owner=None)
    after = [len(client.get(url).content) for url in forms]
    # The inspection's findings are a count with a link to their list (its digits may grow, nothing else).
    assert after[:2] + after[3:] == before[:2] + before[3:] and 0 <= after[2] - before[2] <= 2
    page = client.get(forms[2]).content.decode()
    link = f"{reverse('admin:tracker_finding_changelist')}?inspection__id__exact={inspection.pk}"
    assert f'<a href="{link.replace("&", "&amp;")}">{findings + 50} findings</a>' in page

    listed = client.get(reverse("admin:tracker_recommendation_changelist")).content.decode()
    assert "Unassigned" not in listed  # no owner filter or bulk-owner list naming everyone


def test_a_bulk_assignment_to_another_organisations_owner_is_refused(client, ours, theirs, lead):
    client.force_login(lead)

    response = post_action(client, "assign_owner", [ours], owner=theirs.owner_id)

    assert "Choose an owner from your organisation" in " ".join(page_messages(response))
    ours.refresh_from_db()
    assert ours.owner != theirs.owner


def test_the_change_form_offers_only_eligible_owners(client, ours, theirs, lead, otto, vic):
    client.force_login(lead)

    response = client.get(reverse("admin:tracker_recommendation_change", args=[ours.pk]))

    owners = set(response.context["adminform"].form.fields["owner"].queryset)
    assert otto in owners and lead in owners
    assert vic not in owners and theirs.owner not in owners


@pytest.mark.parametrize(
    "model", ["finding", "progressupdate", "evidence", "recommendationevent", "inspection", "user"]
)
def test_list_filters_name_only_our_own_records(client, ours, theirs, lead, model):
    workflow.post_update(theirs, by=theirs.owner, narrative="Theirs")
    client.force_login(lead)

    response = client.get(reverse(f"admin:tracker_{model}_changelist"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Elsewhere" not in content  # neither their inspection nor their organisation


# Shared configuration is the operator's.

BEAT = ["periodictask", "crontabschedule", "intervalschedule", "clockedschedule", "solarschedule"]


def test_a_governance_lead_cannot_see_or_change_the_reminder_schedule(client, role_permissions, lead):
    from django_celery_beat.models import PeriodicTask

    call_command("setup_schedule", verbosity=0)
    task = PeriodicTask.objects.order_by("pk").first()
    client.force_login(lead)

    for model in BEAT:
        assert client.get(reverse(f"admin:django_celery_beat_{model}_changelist")).status_code == 403, model
    response = client.post(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]), {"enabled": ""})
    assert response.status_code == 403
    assert "django_celery_beat" not in client.get(reverse("admin:index")).content.decode()
    task.refresh_from_db()
    assert task.enabled


def test_themes_are_read_only_to_a_governance_lead(client, role_permissions, lead):
    from tests.factories import ThemeFactory

    theme = ThemeFactory(name="Missing children", slug="missing-children")
    client.force_login(lead)

    assert client.get(reverse("admin:tracker_theme_change", args=[theme.pk])).status_code == 200  # may read
    response = client.post(
        reverse("admin:tracker_theme_change", args=[theme.pk]), {"name": "Renamed", "slug": "renamed"}
    )
    assert response.status_code == 403
    assert client.get(reverse("admin:tracker_theme_add")).status_code == 403
    theme.refresh_from_db()
    assert theme.name == "Missing children"


def test_a_governance_lead_cannot_rename_their_organisation(client, role_permissions, lead, org):
    client.force_login(lead)

    response = client.post(
        reverse("admin:tracker_organisation_change", args=[org.pk]),
        {"name": "Renamed", "slug": "renamed", "kind": "other"},
    )

    assert response.status_code == 403
    org.refresh_from_db()
    assert (org.name, org.slug) == ("Cleveland Police", "cleveland")


def test_a_superuser_in_an_organisation_has_no_cross_tenant_powers(client, ours, theirs, other_org):
    from tests.factories import ThemeFactory

    insider = UserFactory(username="insider", organisation=other_org, is_staff=True, is_superuser=True)
    theme = ThemeFactory()
    client.force_login(insider)

    assert client.get(reverse("admin:tracker_recommendation_change", args=[ours.pk])).status_code == 404
    assert client.get(reverse("admin:tracker_user_change", args=[ours.owner_id])).status_code == 404
    assert client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 403
    assert client.post(reverse("admin:tracker_theme_change", args=[theme.pk]), {"name": "x"}).status_code == 403
    group = ours.owner.groups.get()
    assert client.post(reverse("admin:auth_group_change", args=[group.pk]), {"name": "x"}).status_code == 403


def test_the_operator_sees_every_organisation_and_the_schedule(client, ours, theirs, operator):
    client.force_login(operator)

    response = client.get(reverse("admin:tracker_recommendation_changelist"))

    assert {ours, theirs} <= set(response.context["cl"].result_list)
    assert client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 200


def test_a_governance_lead_cannot_change_a_superusers_account(client, role_permissions, lead, org):
    insider = UserFactory(username="insider", organisation=org, is_staff=True, is_superuser=True)
    client.force_login(lead)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[insider.pk]),
        {"password1": "a new long passphrase 42", "password2": "a new long passphrase 42"},
    )

    assert response.status_code == 403


def test_a_governance_lead_adds_people_to_their_own_organisation_only(client, role_permissions, lead, other_org):
    client.force_login(lead)

    client.post(
        reverse("admin:tracker_user_add"),
        {
            "username": "newcomer",
            "usable_password": "false",
            "email": "newcomer@example.org",
            "first_name": "New",
            "last_name": "Comer",
            "organisation": other_org.pk,
        },
    )

    from tracker.models import User

    assert User.objects.get(username="newcomer").organisation_id == lead.organisation_id


# The change form asks policy, and runs the workflow once.


def offered_transitions(response) -> set[str]:
    form = response.context["adminform"].form
    if "workflow_action" not in form.fields:
        return set()
    return {value for value, _label in form.fields["workflow_action"].widget.choices if value}


def test_the_status_change_offers_what_policy_allows_now(client, ours, lead):
    client.force_login(lead)
    url = reverse("admin:tracker_recommendation_change", args=[ours.pk])

    assert offered_transitions(client.get(url)) == {"submit", "supersede"}
    workflow.submit_for_assurance(ours, by=lead)
    # The lead submitted it, so four eyes keeps the closing from them; they may still return it.
    assert offered_transitions(client.get(url)) == {"reject", "supersede"}


def test_a_closed_recommendation_is_read_only_but_a_lead_may_reopen_it(client, ours, lead, rita):
    workflow.submit_for_assurance(ours, by=ours.owner)
    evidence = ours.evidence.get()
    workflow.review_evidence(evidence, by=rita, accept=True)
    workflow.close(ours, by=rita)
    ours.refresh_from_db()
    client.force_login(lead)
    url = reverse("admin:tracker_recommendation_change", args=[ours.pk])

    response = client.get(url)

    assert offered_transitions(response) == {"reopen"}
    form = response.context["adminform"].form
    assert not {"title", "outcome_measure", "owner", "target_date", "review_interval_days"} & set(form.fields)
    response = client.post(
        url, change_data(ours, client, title="Changed while closed", workflow_action="reopen", reason="New concern")
    )
    assert response.status_code == 302
    ours.refresh_from_db()
    assert (ours.status, ours.title) == (Recommendation.Status.IN_PROGRESS, ours.finding.title)


def test_a_superseded_recommendation_is_view_only(client, ours, lead, org):
    from tests.factories import RecommendationFactory

    replacement = RecommendationFactory(finding__inspection__organisation=org)
    workflow.supersede(ours, by=lead, replacement=replacement, reason="Merged")
    client.force_login(lead)
    url = reverse("admin:tracker_recommendation_change", args=[ours.pk])

    assert client.get(url).context["has_change_permission"] is False
    assert client.post(url, change_data(ours, client, title="x")).status_code == 403


def test_each_save_runs_the_workflow_once(client, ours, lead, otto, monkeypatch):
    calls = []
    real = workflow.assign_owner

    def counted(*args, **kwargs):
        calls.append(kwargs["owner"])
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "assign_owner", counted)
    client.force_login(lead)

    response = client.post(
        reverse("admin:tracker_recommendation_change", args=[ours.pk]), change_data(ours, client, owner=otto.pk)
    )

    assert response.status_code == 302
    assert calls == [otto]
    ours.refresh_from_db()
    assert ours.owner == otto


def test_a_refusal_late_in_a_save_leaves_nothing_of_the_earlier_changes(client, ours, lead):
    client.force_login(lead)
    before = (ours.title, ours.version)

    # The new title is fine, superseding without a replacement is not: nothing of the save stays.
    response = client.post(
        reverse("admin:tracker_recommendation_change", args=[ours.pk]),
        change_data(ours, client, title="A better title", workflow_action="supersede", reason="Merged"),
    )

    assert response.status_code == 200
    assert "Choose the recommendation that replaces this one." in response.content.decode()
    ours.refresh_from_db()
    assert (ours.title, ours.version) == before


def test_a_form_shown_again_after_a_post_saves_nothing(client, ours, lead):
    client.force_login(lead)
    data = change_data(ours, client, title="A better title")
    data = {name: value for name, value in data.items() if not name.endswith("TOTAL_FORMS")}  # a broken inline

    response = client.post(reverse("admin:tracker_recommendation_change", args=[ours.pk]), data)

    assert response.status_code == 200
    ours.refresh_from_db()
    assert ours.title != "A better title"


def test_an_empty_target_date_box_never_clears_an_agreed_date(client, ours, lead):
    client.force_login(lead)

    response = client.post(
        reverse("admin:tracker_recommendation_change", args=[ours.pk]), change_data(ours, client, target_date="")
    )

    assert response.status_code == 200
    assert "An empty box does not remove the target date" in response.content.decode()
    ours.refresh_from_db()
    assert ours.target_date == dt.date(2026, 9, 30)


def test_removing_a_target_date_is_a_ticked_box_with_a_reason(client, ours, lead):
    client.force_login(lead)
    url = reverse("admin:tracker_recommendation_change", args=[ours.pk])

    response = client.post(url, change_data(ours, client, remove_target_date="on"))
    assert "Give a reason for removing the target date." in response.content.decode()
    response = client.post(url, change_data(ours, client, remove_target_date="on", reason="Date no longer agreed"))

    assert response.status_code == 302
    ours.refresh_from_db()
    assert ours.target_date is None
    assert ours.events.filter(
        action=RecommendationEvent.Action.TARGET_DATE_CHANGED, reason="Date no longer agreed"
    ).exists()


def test_a_bulk_review_interval_beyond_the_bound_is_refused_with_the_bound(client, ours, lead):
    from tracker.models import MAX_REVIEW_INTERVAL_DAYS

    client.force_login(lead)

    response = post_action(client, "set_review_interval", [ours], interval_days=MAX_REVIEW_INTERVAL_DAYS + 1)

    assert f"from 1 to {MAX_REVIEW_INTERVAL_DAYS} days" in " ".join(page_messages(response))
    ours.refresh_from_db()
    assert ours.review_interval_days != MAX_REVIEW_INTERVAL_DAYS + 1


def test_a_bulk_action_shows_each_refusal_and_does_the_rest(client, ours, lead, otto, org):
    from tests.factories import RecommendationFactory

    replacement = RecommendationFactory(finding__inspection__organisation=org, finding__reference="OBS77")
    closed = RecommendationFactory(finding__inspection__organisation=org, finding__reference="OBS78")
    workflow.supersede(closed, by=lead, replacement=replacement, reason="Merged")
    client.force_login(lead)

    response = post_action(client, "assign_owner", [ours, closed], owner=otto.pk)

    shown = " ".join(page_messages(response))
    assert "Changed 1 recommendation(s)." in shown
    assert "OBS78: This recommendation is superseded" in shown
    ours.refresh_from_db()
    closed.refresh_from_db()
    assert (ours.owner, closed.owner) == (otto, None)


def test_accepting_evidence_in_the_admin_shows_the_four_eyes_refusal(client, ours, lead, rita):
    from tracker.policy import FOUR_EYES_EVIDENCE

    workflow.add_evidence(ours, by=lead, kind="note", category="outcome", description="Lead's audit", note="Audit")
    workflow.submit_for_assurance(ours, by=ours.owner)
    client.force_login(lead)
    pending = list(ours.evidence.all())

    response = client.post(
        reverse("admin:tracker_evidence_changelist"),
        {"action": "accept", "_selected_action": [e.pk for e in pending], "index": 0},
        follow=True,
    )

    assert FOUR_EYES_EVIDENCE in " ".join(page_messages(response))
    assert set(ours.evidence.values_list("verdict", flat=True)) == {"pending"}


def test_the_escalation_contact_choices_are_our_active_people(client, role_permissions, lead, olly, otto, mallory):
    gone = UserFactory(username="gone", organisation=lead.organisation, roles=[Role.OWNER], is_active=False)
    client.force_login(lead)

    response = client.get(reverse("admin:tracker_user_change", args=[olly.pk]))

    choices = set(response.context["adminform"].form.fields["escalation_contact"].queryset)
    assert otto in choices
    assert gone not in choices and mallory not in choices


def test_a_lead_adds_a_recommendation_through_the_workflow(client, role_permissions, lead, org):
    from tests.factories import FindingFactory, RecommendationFactory

    finding = FindingFactory(inspection__organisation=org, reference="AFI9")
    planned = RecommendationFactory(finding__inspection__organisation=org).finding
    client.force_login(lead)
    offered = client.get(reverse("admin:tracker_recommendation_add")).context["adminform"].form.fields["finding"]
    assert finding in offered.queryset and planned not in offered.queryset  # one recommendation per finding

    response = client.post(
        reverse("admin:tracker_recommendation_add"),
        {
            "finding": finding.pk,
            "title": "Audit missing-child episodes",
            "outcome_measure": "",
            "review_interval_days": 30,
        },
    )

    assert response.status_code == 302
    rec = Recommendation.objects.get(finding=finding)
    assert rec.events.filter(action=RecommendationEvent.Action.CREATED, actor=lead).count() == 1


@pytest.mark.parametrize("typed", ["2027-02-31", "31/02/2027", "20277-01-01"])
def test_an_impossible_target_date_is_refused_in_the_admin_and_nothing_changes(client, ours, lead, typed):
    client.force_login(lead)
    before = (ours.target_date, ours.version)

    response = client.post(
        reverse("admin:tracker_recommendation_change", args=[ours.pk]),
        change_data(ours, client, target_date=typed, reason="Typo"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["target_date"]
    ours.refresh_from_db()
    assert (ours.target_date, ours.version) == before


def test_a_viewer_posted_as_owner_is_refused_in_the_admin_and_nothing_changes(client, ours, lead, vic):
    client.force_login(lead)
    before = (ours.owner_id, ours.version)

    response = client.post(
        reverse("admin:tracker_recommendation_change", args=[ours.pk]), change_data(ours, client, owner=vic.pk)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["owner"]
    ours.refresh_from_db()
    assert (ours.owner_id, ours.version) == before

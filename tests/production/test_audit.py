"""Audit: field history on every model, kept and shown to governance leads; access (downloads, exports) logged
with who, what and when, and readable by governance leads in the admin."""

import datetime as dt

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django_celery_beat.models import PeriodicTask
from pytest_django.asserts import assertInHTML as assert_in_html

from tests.factories import UserFactory
from tests.web.conftest import PDF_BYTES
from tracker import workflow
from tracker.models import (
    AccessLog,
    CalendarFeedToken,
    ExportJob,
    ImportJob,
    RecommendationCount,
    RecommendationEvent,
    Reminder,
    SweepRun,
    ThemeCount,
    ThemeStatusCount,
)
from tracker.permissions import Role
from tracker.uploads import check_upload

# Records that are themselves the log of what happened, each row written once and kept: a history of
# their fields would only repeat them. Reminder rows carry their own state, attempts, error and sent time;
# calendar links are revoked (revoked_at), never edited. A sweep run is itself the record that a day's
# sweep happened (the system writes it, nobody edits it). An export job is a file the worker made and its
# progress, written only by the system; taking the file is recorded in the access log. An import job is
# likewise the worker's record of one upload; what it imported has its own history.
# The dashboard's and the list's kept counts (tracker.counts) are figures the database derives from the recommendations by
# trigger; the recommendations' own history is the record.
OWN_RECORD = {
    RecommendationEvent,
    AccessLog,
    Reminder,
    CalendarFeedToken,
    SweepRun,
    ExportJob,
    ImportJob,
    RecommendationCount,
    ThemeCount,
    ThemeStatusCount,
}


def test_every_model_keeps_a_field_history_unless_it_is_a_log_itself():
    without = {
        model
        for model in apps.get_app_config("tracker").get_models()
        if not model.__name__.startswith("Historical") and not hasattr(model._meta, "simple_history_manager_attribute")
    }

    assert without == OWN_RECORD


def test_nothing_purges_history_on_a_schedule(db):
    call_command("setup_schedule")

    tasks = set(PeriodicTask.objects.values_list("task", flat=True))

    assert tasks  # the schedule exists ...
    assert not [
        task for task in tasks if "history" in task or "clean" in task or "purge" in task
    ]  # ... and keeps it all


@pytest.fixture
def changed(rec, lead):
    workflow.change_target_date(
        rec, by=lead, target_date=timezone.localdate() + dt.timedelta(days=90), reason="Board agreed a new date"
    )
    rec.refresh_from_db()
    return rec


@pytest.mark.parametrize("page", ["recommendation", "user", "organisation", "finding", "inspection"])
def test_a_governance_lead_reads_the_field_history_in_the_admin(client, role_permissions, lead, changed, page):
    obj = {
        "recommendation": changed,
        "user": changed.owner,
        "organisation": changed.finding.inspection.organisation,
        "finding": changed.finding,
        "inspection": changed.finding.inspection,
    }[page]
    client.force_login(lead)

    response = client.get(reverse(f"admin:tracker_{page}_history", args=[obj.pk]))

    assert response.status_code == 200
    # One row of the history table per stored record, newest first, each with its own date and kind.
    records = list(obj.history.all())
    table = response.content.decode().split('id="change-history"')[1].split("</table>")[0]
    rows = table.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == len(records) >= 1
    for row, record in zip(rows, records, strict=True):
        assert f"<td>{localize(timezone.localtime(record.history_date))}</td>" in row
        assert f"<td>{record.get_history_type_display()}</td>" in row


def test_the_history_page_shows_who_changed_what(client, role_permissions, lead, changed):
    client.force_login(lead)
    record = changed.history.first()

    response = client.get(reverse("admin:tracker_recommendation_history", args=[changed.pk]))

    # The newest row of the history table, not anywhere on the page: the header also names the user.
    html = response.content.decode()
    newest = html.split('id="change-history"')[1].split("<tbody>")[1].split("</tr>")[0]
    assert record.history_change_reason == "Target date changed"
    assert_in_html(f'<a href="{reverse("admin:tracker_user_change", args=[lead.pk])}">{lead}</a>', newest)
    assert_in_html(
        f"<li><strong>Target date:</strong> None &nbsp;&rarr;&nbsp;&nbsp;{changed.target_date.isoformat()}</li>",
        newest,
    )


def test_an_owner_cannot_read_history_in_the_admin(client, role_permissions, olly, changed):
    client.force_login(olly)

    response = client.get(reverse("admin:tracker_recommendation_history", args=[changed.pk]))

    assert response.status_code == 302  # not staff: sent to the admin's sign-in


def test_downloads_and_exports_are_logged_and_a_governance_lead_reads_the_log_in_the_admin(
    client, role_permissions, lead, olly, rec
):
    upload = check_upload(SimpleUploadedFile("audit.pdf", PDF_BYTES, content_type="application/pdf"))
    evidence = workflow.add_evidence(rec, by=olly, kind="file", category="output", description="Audit", upload=upload)
    client.force_login(olly)
    assert client.get(reverse("tracker:evidence-download", args=[evidence.pk])).status_code == 200
    client.force_login(lead)
    assert client.get(reverse("tracker:export-csv") + "?status=not_started").status_code == 200

    logs = {log.action: log for log in AccessLog.objects.all()}
    download, export = logs[AccessLog.Action.EVIDENCE_DOWNLOAD], logs[AccessLog.Action.EXPORT]
    assert (download.user, download.detail["evidence"]) == (olly, evidence.pk)
    assert export.user == lead
    assert "status=not_started" in str(export.detail)
    assert timezone.now() - download.at < dt.timedelta(minutes=1)

    page = client.get(reverse("admin:tracker_accesslog_changelist"))
    assert page.status_code == 200
    assert str(olly).encode() in page.content and str(lead).encode() in page.content
    assert b"Evidence downloaded" in page.content and b"Recommendations exported" in page.content


def test_another_organisations_lead_does_not_see_our_access_log(client, role_permissions, mallory, olly):
    AccessLog.objects.create(user=olly, action=AccessLog.Action.EXPORT, object_repr="our export")
    UserFactory(username="someone", organisation=mallory.organisation, roles=[Role.OWNER])
    client.force_login(mallory)

    page = client.get(reverse("admin:tracker_accesslog_changelist"))

    assert page.status_code == 200
    assert b"our export" not in page.content

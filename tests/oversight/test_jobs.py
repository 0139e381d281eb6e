"""Excel exports and board-pack PDFs are made by the worker: a status page with progress, a private
download for the requester only, reused while the data is unchanged, retried after a failure."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.db import IntegrityError, transaction
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from openpyxl.utils import get_column_letter

from tests.oversight.conftest import content, fetch
from tracker import exports, jobs, tasks, workflow
from tracker.models import AccessLog, ExportJob, Finding, Recommendation
from tracker.permissions import Role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker")]

XLSX = reverse("tracker:export-xlsx")


@pytest.fixture
def queued(monkeypatch):
    """The ids handed to the broker, instead of running them."""
    sent: list[str] = []
    monkeypatch.setattr(tasks.build_export, "delay", sent.append)
    return sent


def _status(client, job):
    return client.get(reverse("tracker:export-job", args=[job.pk]))


def test_the_request_only_queues_the_job_and_only_once_it_commits(client, cleveland, rita, queued):
    client.force_login(rita)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        response = client.get(XLSX, {"status": "not_started"})
        assert queued == []  # nothing reaches the broker before the transaction commits

    job = ExportJob.objects.get()
    assert response["Location"] == reverse("tracker:export-job", args=[job.pk])
    assert (job.user, job.kind, job.state, job.file.name) == (rita, "xlsx", "pending", "")
    assert len(callbacks) == 1
    callbacks[0]()
    assert queued == [str(job.pk)]  # an id, as JSON: never the model


def test_the_status_page_refreshes_itself_with_progress_until_the_file_is_ready(client, cleveland, rita, queued):
    client.force_login(rita)
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.get(XLSX)
    job = ExportJob.objects.get()
    html = _status(client, job).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in html
    assert "Waiting to start" in html

    ExportJob.objects.filter(pk=job.pk).update(state="running", done=2000, total=100000)
    html = _status(client, job).content.decode()
    assert "2,000 of 100,000 recommendations written" in html
    assert 'http-equiv="refresh"' in html

    ExportJob.objects.filter(pk=job.pk).update(state="pending", done=0, total=0)
    assert tasks.build_export(str(job.pk)) == "ready"
    html = _status(client, job).content.decode()
    assert 'http-equiv="refresh"' not in html
    assert f'href="{reverse("tracker:export-download", args=[job.pk])}"' in html


def test_the_worker_writes_progress_as_it_goes(cleveland, rita, monkeypatch):
    monkeypatch.setattr(jobs, "PROGRESS_EVERY", 5)
    written = []
    progress = jobs._progress
    monkeypatch.setattr(jobs, "_progress", lambda job, **fields: (written.append(fields), progress(job, **fields)))
    job = jobs.start_list_export(rita, ExportJob.Kind.XLSX, _query(""))

    assert jobs.run(str(job.pk)) == "ready"

    assert written == [{"total": 19}, {"done": 5}, {"done": 10}, {"done": 15}, {"done": 19, "total": 19}]


def test_a_second_request_with_unchanged_data_goes_straight_to_the_download(client, cleveland, rita, queued):
    client.force_login(rita)
    fetch(client, XLSX, {"theme": "missing-children", "status": "not_started"})
    job = ExportJob.objects.get()
    jobs.run(str(job.pk))

    # The same query in another spelling: other order, a page number and a blank filter.
    again = client.get(XLSX, {"status": "not_started", "page": "3", "rag": "", "theme": "missing-children"})

    assert again["Location"] == reverse("tracker:export-download", args=[job.pk])
    assert ExportJob.objects.count() == 1
    assert queued == [str(job.pk)]


@pytest.mark.parametrize("change", ["workflow", "admin edit of a finding", "new recommendation"])
def test_a_change_to_the_data_makes_a_new_file_and_drops_the_old_one(client, cleveland, rita, lead, olly, change):
    client.force_login(rita)
    first = fetch(client, XLSX)
    old = ExportJob.objects.get()
    old_path = old.file.path
    assert os.path.exists(old_path) and content(first)

    rec = Recommendation.objects.filter(finding__inspection=cleveland).with_related().first()
    if change == "workflow":
        workflow.assign_owner(rec, by=lead, owner=olly)
    elif change == "admin edit of a finding":
        finding = Finding.objects.get(pk=rec.finding_id)
        finding.summary = "Reworded by the admin"
        finding.save()
    else:
        from tests.factories import RecommendationFactory

        RecommendationFactory(finding__inspection=cleveland, finding__reference="NEW-1")
    fetch(client, XLSX)

    new = ExportJob.objects.get()  # the old job and its file are gone
    assert new.pk != old.pk and new.state == "ready"
    assert not os.path.exists(old_path)


def test_the_next_day_makes_a_new_file(client, cleveland, rita, time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 18, 12, 0, tzinfo=dt.UTC))
    client.force_login(rita)
    fetch(client, XLSX)
    time_machine.move_to(dt.datetime(2026, 3, 19, 12, 0, tzinfo=dt.UTC))
    client.force_login(rita)  # the session of yesterday has expired
    assert client.get(XLSX)["Location"].startswith("/exports/")
    assert "/download/" not in client.get(XLSX)["Location"]


def test_only_the_requester_sees_the_job_or_its_file(client, cleveland, rita, vic, lead, mallory):
    client.force_login(rita)
    fetch(client, XLSX)
    job = ExportJob.objects.get()
    for other in (vic, lead, mallory):  # the same organisation's viewer and lead too
        client.force_login(other)
        assert _status(client, job).status_code == 404
        assert client.get(reverse("tracker:export-download", args=[job.pk])).status_code == 404
    assert AccessLog.objects.count() == 1  # rita's own download only


def test_an_owner_cannot_ask_for_a_file(client, cleveland, olly):
    client.force_login(olly)
    assert client.get(XLSX).status_code == 403
    assert not ExportJob.objects.exists()


def test_the_file_is_private_and_sent_as_an_attachment_that_is_not_kept(client, cleveland, rita, settings):
    client.force_login(rita)
    response = fetch(client, XLSX)
    job = ExportJob.objects.get()

    assert response["Content-Disposition"].startswith('attachment; filename="recommendations-')
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"  # like evidence downloads
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert job.file.path.startswith(os.path.join(str(settings.EVIDENCE_ROOT), "exports") + os.sep)
    with pytest.raises(ValueError):
        job.file.url  # noqa: B018 (no public URL exists to link to)


def test_each_download_is_logged_and_asking_alone_is_not(client, cleveland, rita, queued):
    client.force_login(rita)
    client.get(XLSX, {"status": "not_started"})
    assert not AccessLog.objects.exists()
    job = ExportJob.objects.get()
    jobs.run(str(job.pk))

    for _ in range(2):
        content(client.get(reverse("tracker:export-download", args=[job.pk])))

    logs = list(AccessLog.objects.values_list("user", "action", "detail"))
    assert (
        logs
        == [(rita.pk, "export", {"format": "xlsx", "query": "status=not_started", "rows": 19, "job": str(job.pk)})] * 2
    )


def test_a_failed_job_says_so_and_trying_again_makes_a_new_one(client, cleveland, rita, monkeypatch, queued):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "write_xlsx", broken)
    client.force_login(rita)
    client.get(XLSX, {"status": "not_started"})
    job = ExportJob.objects.get()
    with pytest.raises(OSError):
        tasks.build_export(str(job.pk))  # recorded on the job, and still a failure for Celery's log

    job.refresh_from_db()
    assert job.state == "failed"
    html = _status(client, job).content.decode()
    assert "The file could not be made" in html and "Something went wrong" in html
    assert 'http-equiv="refresh"' not in html
    assert f'href="{XLSX}?status=not_started">Try again' in html
    assert client.get(reverse("tracker:export-download", args=[job.pk]))["Location"] == _status_url(job)

    client.get(XLSX, {"status": "not_started"})
    assert ExportJob.objects.exclude(pk=job.pk).get().state == "pending"


def test_a_job_whose_worker_vanished_is_shown_failed_and_replaced(client, cleveland, rita, queued):
    client.force_login(rita)
    client.get(XLSX)
    job = ExportJob.objects.get()
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    assert "It stopped before it finished" in _status(client, job).content.decode()
    client.get(XLSX)

    job.refresh_from_db()
    assert job.state == "failed"
    assert ExportJob.objects.filter(state="pending").count() == 1
    assert jobs.run(str(job.pk)) == "skipped"  # its late delivery does nothing


def test_a_second_delivery_of_the_task_does_nothing(cleveland, rita):
    job = jobs.start_list_export(rita, ExportJob.Kind.XLSX, _query(""))
    assert jobs.run(str(job.pk)) == "ready"
    assert jobs.run(str(job.pk)) == "skipped"


def test_one_live_job_per_key_is_the_databases_rule(cleveland, rita):
    job = jobs.start_list_export(rita, ExportJob.Kind.XLSX, _query(""))
    with pytest.raises(IntegrityError), transaction.atomic():
        ExportJob.objects.create(user=rita, organisation=rita.organisation, kind="xlsx", key=job.key)
    ExportJob.objects.filter(pk=job.pk).update(state="failed")
    ExportJob.objects.create(user=rita, organisation=rita.organisation, kind="xlsx", key=job.key)


def test_someone_who_lost_the_role_while_the_job_waited_gets_no_file(cleveland, rita):
    job = jobs.start_list_export(rita, ExportJob.Kind.XLSX, _query(""))
    rita.groups.clear()
    rita.groups.add(*_group(Role.OWNER))

    with pytest.raises(jobs.NotAllowed):
        jobs.run(str(job.pk))

    job.refresh_from_db()
    assert (job.state, job.file.name) == ("failed", "")
    assert "no longer have a role" in job.error


def test_the_board_pack_pdf_is_a_job_of_its_inspection_and_date(client, cleveland, rita, monkeypatch, queued):
    monkeypatch.setattr(jobs.boardpack, "render_pdf", lambda pack: b"%PDF-1.7 " + str(pack.total).encode())
    client.force_login(rita)
    url = reverse("tracker:board-pack-pdf", args=[cleveland.pk])
    client.get(url, {"since": "2026-02-01"})
    job = ExportJob.objects.get()
    assert (job.kind, job.inspection, job.query) == (
        "board_pack_pdf",
        cleveland,
        f"inspection={cleveland.pk}&since=2026-02-01",
    )
    jobs.run(str(job.pk))

    assert client.get(url, {"since": "2026-02-01"})["Location"] == reverse("tracker:export-download", args=[job.pk])
    client.get(url, {"since": "2026-01-01"})  # another date: another file
    assert ExportJob.objects.count() == 2
    response = client.get(reverse("tracker:export-download", args=[job.pk]))
    assert content(response) == b"%PDF-1.7 19"
    assert response["Content-Type"] == "application/pdf"
    log = AccessLog.objects.get()
    assert (log.detail["format"], log.detail["inspection"], log.detail["since"], log.detail["rows"]) == (
        "pdf",
        cleveland.pk,
        "2026-02-01",
        19,
    )


def _query(text: str):
    from django.http import QueryDict

    return QueryDict(text)


def _status_url(job) -> str:
    return reverse("tracker:export-job", args=[job.pk])


def _group(role):
    from django.contrib.auth.models import Group

    return [Group.objects.get_or_create(name=role)[0]]


def test_the_worker_writes_the_formatted_workbook_in_write_only_mode(cleveland, rita, monkeypatch):
    import io

    from openpyxl import Workbook, load_workbook

    modes = []

    def workbook(*args, **kwargs):
        modes.append(kwargs.get("write_only"))
        return Workbook(*args, **kwargs)

    monkeypatch.setattr("openpyxl.Workbook", workbook)
    job = jobs.start_list_export(rita, ExportJob.Kind.XLSX, _query("status=not_started"))
    assert jobs.run(str(job.pk)) == "ready"

    assert modes == [True]  # rows streamed to the file, never held as a whole sheet
    job.refresh_from_db()
    with job.file.open("rb") as made:
        sheet = load_workbook(io.BytesIO(made.read())).worksheets[0]
    assert (sheet.freeze_panes, sheet.auto_filter.ref) == (
        "A2",
        f"A1:{get_column_letter(len(exports.COLUMNS))}{job.total + 1}",
    )
    latest = [column.header for column in exports.COLUMNS].index("Latest update") + 1
    assert sheet[f"{get_column_letter(latest)}1"].value == "Latest update"


CSV = reverse("tracker:export-csv")


def test_a_csv_too_long_for_a_request_is_made_by_the_worker_and_is_the_same_file(client, cleveland, rita, settings):
    """Up to CSV_STREAM_MAX_ROWS rows the CSV is streamed in the request; above, the worker writes the same
    bytes to a private file, with progress, logged at download like every file it makes."""
    client.force_login(rita)
    query = {"status": "not_started"}
    rows = jobs.selected_recommendations(rita, "status=not_started").count()
    settings.CSV_STREAM_MAX_ROWS = rows  # at the limit: streamed, logged as it is asked for
    streamed = client.get(CSV, query)
    assert streamed.streaming and not ExportJob.objects.exists()
    streamed = content(streamed)
    assert AccessLog.objects.get().detail["format"] == "csv"
    AccessLog.objects.all().delete()

    settings.CSV_STREAM_MAX_ROWS = rows - 1  # one row more than a request may stream: a job
    with TestCase.captureOnCommitCallbacks(execute=True):
        asked = client.get(CSV, query)
    job = ExportJob.objects.get()
    assert (job.kind, job.query) == ("csv", "status=not_started")
    assert asked["Location"] in (
        reverse("tracker:export-job", args=[job.pk]),
        reverse("tracker:export-download", args=[job.pk]),
    )
    assert not AccessLog.objects.exists()  # asking is not taking
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("ready", rows, rows)
    page = _status(client, job).content.decode()
    assert "CSV export" in page and f'href="{reverse("tracker:recommendations")}?status=not_started"' in page

    made = client.get(reverse("tracker:export-download", args=[job.pk]))
    assert made["Content-Type"] == "text/csv; charset=utf-8"
    assert made["Content-Disposition"].endswith('.csv"')
    assert content(made) == streamed
    log = AccessLog.objects.get()
    assert log.object_repr == f"{rows} recommendations as CSV"
    assert log.detail == {"format": "csv", "query": "status=not_started", "rows": rows, "job": str(job.pk)}

"""Imports from the admin run in the worker: the request keeps the file privately and answers at once with a
job page that refreshes itself, shows progress, and ends with the import's report or its problems."""

from __future__ import annotations

import datetime as dt
import io
import os
import time

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from tests.oversight.test_import_scale import _file
from tests.oversight.test_imports import NEW_SLUG, counts, csv_bytes, good_row, history_counts
from tracker import import_jobs, imports, tasks
from tracker.models import ImportJob, Inspection, Recommendation
from tracker.permissions import Role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("groups")]

IMPORT = reverse("admin:tracker_inspection_import")


@pytest.fixture
def groups(db):
    """The real role groups with their model permissions (the admin asks for them)."""
    call_command("loaddata", "groups", verbosity=0)


@pytest.fixture
def queued(monkeypatch):
    """The ids handed to the broker, instead of running them."""
    sent: list[str] = []
    monkeypatch.setattr(tasks.run_import, "delay", sent.append)
    return sent


def upload(content: bytes, name: str = "plan.csv") -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def post(client, content: bytes, dry_run: bool = False, name: str = "plan.csv"):
    data = {"file": upload(content, name)}
    if dry_run:
        data["dry_run"] = "on"
    return client.post(IMPORT, data)


def page(client, job):
    return client.get(reverse("tracker:import-job", args=[job.pk]))


def test_the_request_keeps_the_file_privately_and_queues_the_job_once_it_commits(client, lead, olly, queued, settings):
    client.force_login(lead)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        response = post(client, csv_bytes([good_row()]))
        assert queued == []  # nothing reaches the broker before the transaction commits

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("tracker:import-job", args=[job.pk])
    assert (job.user, job.organisation_id, job.state, job.filename, job.dry_run) == (
        lead,
        lead.organisation_id,
        "pending",
        "plan.csv",
        False,
    )
    # Private: under EVIDENCE_ROOT/imports, named by the job's id, with no URL.
    assert job.upload.path == os.path.join(str(settings.EVIDENCE_ROOT), "imports", job.pk.hex)
    with pytest.raises(ValueError):
        job.upload.url  # noqa: B018
    assert not Inspection.objects.filter(slug=NEW_SLUG).exists()  # nothing imported in the request
    callbacks[0]()
    assert queued == [str(job.pk)]  # an id, as JSON: never the model


def test_a_large_import_answers_at_once_with_the_job_page(client, lead, olly, otto, queued):
    content = _file(10_000)
    client.force_login(lead)
    started = time.perf_counter()
    response = post(client, content)
    took = time.perf_counter() - started

    assert response.status_code == 302 and response["Location"].startswith("/imports/")
    # The import itself takes 12 s or more (bench/imports.py); the request only stores the file.
    assert took < 5, f"the request took {took:.1f} s"
    assert Recommendation.objects.filter(finding__inspection__slug=NEW_SLUG).count() == 0


def test_the_job_page_refreshes_with_progress_then_shows_what_was_imported(client, lead, olly, queued):
    client.force_login(lead)
    post(client, csv_bytes([good_row(Reference=f"R{n}") for n in range(1, 4)]))
    job = ImportJob.objects.get()
    html = page(client, job).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in html
    assert "Waiting to start" in html

    ImportJob.objects.filter(pk=job.pk).update(state="checking", done=2000, total=10000)
    html = page(client, job).content.decode()
    assert "2,000 of 10,000 rows checked" in html and 'http-equiv="refresh"' in html
    ImportJob.objects.filter(pk=job.pk).update(state="saving")
    assert "Saving 10,000 recommendations" in page(client, job).content.decode()

    ImportJob.objects.filter(pk=job.pk).update(state="pending", done=0, total=0)
    assert tasks.run_import(str(job.pk)) == "done"
    job.refresh_from_db()
    assert (job.state, job.rows, job.inspections, job.total, job.done) == ("done", 3, [NEW_SLUG], 3, 3)
    html = page(client, job).content.decode()
    assert 'http-equiv="refresh"' not in html
    assert "3 recommendations into acme-police-2026-ncpi" in html
    inspection = Inspection.objects.get(slug=NEW_SLUG)
    assert f'href="{reverse("tracker:inspection", args=[inspection.pk])}"' in html
    assert Recommendation.objects.filter(finding__inspection=inspection, owner=olly).count() == 3
    assert not os.path.exists(os.path.join(str(job.upload.storage.location), job.pk.hex))  # the file is gone
    assert job.upload.name == ""


def test_the_worker_writes_progress_as_it_checks(lead, olly, otto, monkeypatch):
    monkeypatch.setattr(imports, "CHECKED_EVERY", 5)
    seen = []
    update = import_jobs.JobProgress._update
    monkeypatch.setattr(import_jobs.JobProgress, "_update", lambda self, **f: (seen.append(f), update(self, **f))[1])
    job = import_jobs.start(lead, _uploaded(_file(12)), dry_run=False)

    assert import_jobs.run(str(job.pk)) == "done"

    assert seen == [{"total": 12}, {"done": 5}, {"done": 10}, {"done": 12}, {"state": "saving"}]


def test_a_file_with_problems_lists_them_by_row_and_changes_nothing(client, lead, olly, queued):
    client.force_login(lead)
    rows = [good_row(Reference="R1"), good_row(Reference="R2", **{"Target date": "tomorrow"})]
    rows.append(good_row(Reference="R3", **{"Owner username": "ghost"}))
    post(client, csv_bytes(rows))
    job = ImportJob.objects.get()
    before = counts(), history_counts()

    assert tasks.run_import(str(job.pk)) == "failed"

    assert (counts(), history_counts()) == before
    job.refresh_from_db()
    assert (job.state, job.problem_count, job.upload.name) == ("failed", 2, "")
    html = page(client, job).content.decode()
    assert "Nothing was imported" in html and 'http-equiv="refresh"' not in html
    assert "row 3, column Target date: &#x27;tomorrow&#x27; is not a date" in html
    assert "row 4, column Owner username: nobody called &#x27;ghost&#x27; in your organisation" in html
    assert f'href="{IMPORT}">Try again' in html


def test_only_the_first_problems_are_kept_and_the_rest_counted(client, lead, olly, monkeypatch, queued):
    monkeypatch.setattr(ImportJob, "MAX_PROBLEMS", 2)
    client.force_login(lead)
    post(client, csv_bytes([good_row(Reference=f"R{n}", **{"Owner username": "ghost"}) for n in range(5)]))
    job = ImportJob.objects.get()
    tasks.run_import(str(job.pk))
    job.refresh_from_db()
    assert (len(job.problems), job.problem_count) == (2, 5)
    assert "and 3 more, not shown" in page(client, job).content.decode()


def test_a_dry_run_is_a_job_too_and_writes_nothing_but_its_job(client, lead, olly, queued):
    client.force_login(lead)
    post(client, csv_bytes([good_row()]), dry_run=True)
    job = ImportJob.objects.get()
    before = counts(), history_counts()

    assert tasks.run_import(str(job.pk)) == "done"

    assert (counts(), history_counts()) == before
    job.refresh_from_db()
    assert (job.dry_run, job.state, job.rows, job.upload.name) == (True, "done", 1, "")
    html = page(client, job).content.decode()
    assert "The file is fine" in html and "Nothing was changed" in html


def test_a_failure_while_saving_leaves_nothing_half_imported(client, lead, olly, monkeypatch, queued):
    client.force_login(lead)
    post(client, csv_bytes([good_row(Reference=f"R{n}") for n in range(3)]))
    job = ImportJob.objects.get()
    before = counts(), history_counts()
    real = imports.RecommendationEvent.objects.bulk_create

    def broken(*args, **kwargs):
        real(*args, **kwargs)  # the events are written, then the disk fills: all must go
        raise OSError("disk full")

    monkeypatch.setattr(imports.RecommendationEvent.objects, "bulk_create", broken)
    with pytest.raises(OSError):
        tasks.run_import(str(job.pk))  # recorded on the job, and still a failure for Celery's log

    assert (counts(), history_counts()) == before
    job.refresh_from_db()
    assert (job.state, job.upload.name) == ("failed", "")
    assert "Nothing was imported" in page(client, job).content.decode()


def test_a_job_given_up_while_saving_rolls_its_rows_back(lead, olly, monkeypatch):
    job = import_jobs.start(lead, _uploaded(csv_bytes([good_row()])), dry_run=False)
    before = counts(), history_counts()
    saving = import_jobs.JobProgress.saving

    def given_up_meanwhile(self):
        saving(self)
        ImportJob.objects.filter(pk=job.pk).update(state="failed")  # its page found it stale

    monkeypatch.setattr(import_jobs.JobProgress, "saving", given_up_meanwhile)
    assert import_jobs.run(str(job.pk)) == "failed"
    assert (counts(), history_counts()) == before


def test_a_second_delivery_of_the_task_does_nothing(lead, olly):
    job = import_jobs.start(lead, _uploaded(csv_bytes([good_row()])), dry_run=False)
    assert import_jobs.run(str(job.pk)) == "done"
    assert import_jobs.run(str(job.pk)) == "skipped"
    assert Recommendation.objects.filter(finding__inspection__slug=NEW_SLUG).count() == 1


def test_a_job_whose_worker_vanished_is_shown_failed_and_its_file_deleted(client, lead, olly, queued):
    client.force_login(lead)
    post(client, csv_bytes([good_row()]))
    job = ImportJob.objects.get()
    path = job.upload.path
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    assert "It stopped before it finished. Nothing was imported." in page(client, job).content.decode()
    assert not os.path.exists(path)
    assert import_jobs.run(str(job.pk)) == "skipped"  # its late delivery does nothing


def test_a_lead_who_lost_the_role_while_the_job_waited_imports_nothing(client, lead, olly, queued):
    client.force_login(lead)
    post(client, csv_bytes([good_row()]))
    job = ImportJob.objects.get()
    lead.groups.clear()
    lead.groups.add(*_groups(Role.OWNER))

    assert tasks.run_import(str(job.pk)) == "failed"
    job.refresh_from_db()
    assert (job.state, job.error) == ("failed", "Only a governance lead can import recommendations.")
    assert not Inspection.objects.filter(slug=NEW_SLUG).exists()


def test_only_the_lead_who_started_it_sees_the_job(client, lead, rita, vic, olly, mallory, queued):
    client.force_login(lead)
    post(client, csv_bytes([good_row()]))
    job = ImportJob.objects.get()
    assert page(client, job).status_code == 200
    other_lead = type(lead).objects.create_user("lea", organisation=lead.organisation)
    other_lead.groups.add(*_groups(Role.GOVERNANCE_LEAD))
    for other in (other_lead, mallory):  # another lead of the same organisation too
        client.force_login(other)
        assert page(client, job).status_code == 404
    for other in (rita, vic, olly):  # no role that may import
        client.force_login(other)
        assert page(client, job).status_code == 403


def test_only_governance_leads_may_start_an_import(client, rita, vic, olly, queued):
    for who in (rita, vic, olly):
        client.force_login(who)
        assert post(client, csv_bytes([good_row()])).status_code in (302, 403)
    assert not ImportJob.objects.exists()
    assert queued == []


def test_a_file_over_the_size_cap_is_refused_in_the_request_and_not_kept(client, lead, monkeypatch, queued, settings):
    monkeypatch.setattr(imports, "MAX_BYTES", 100)
    client.force_login(lead)
    response = post(client, csv_bytes([good_row()]))
    assert response.status_code == 200
    assert "file: the file is larger than 0 MB." in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not os.path.exists(os.path.join(str(settings.EVIDENCE_ROOT), "imports")) or not os.listdir(
        os.path.join(str(settings.EVIDENCE_ROOT), "imports")
    )


def _uploaded(content: bytes, name: str = "plan.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def _groups(role):
    from django.contrib.auth.models import Group

    return [Group.objects.get(name=role)]

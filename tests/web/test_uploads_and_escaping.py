"""Bad uploads are refused with a message and nothing is stored; hostile text is shown escaped."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.web.conftest import PDF_BYTES
from tracker import workflow
from tracker.models import Evidence, ProgressUpdate
from tracker.uploads import UploadRejected, check_upload

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>{{ 7|add:1 }}"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7|add:1 }}"


def _fields(rec) -> dict:
    return {"kind": "file", "category": "outcome", "description": "Audit", "version": str(rec.version)}


def _raw_multipart(client, url: str, fields: dict, filename: str, content: bytes):
    """Post a file part with the filename exactly as given: the test client would strip its folders."""
    boundary = "----trackerboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: application/pdf\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return client.generic("POST", url, body, content_type=f"multipart/form-data; boundary={boundary}")


def _stored_files(settings) -> list[Path]:
    root = Path(settings.EVIDENCE_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def started(rec, olly, client):
    workflow.post_update(rec, by=olly, narrative="Started")
    rec.refresh_from_db()
    client.force_login(olly)
    return rec


def _assert_refused(response, settings, message: str) -> None:
    html = response.content.decode()
    assert response.status_code == 200
    assert '<a href="#id_file">' in html  # in the error summary, linked to the field
    assert '<p id="id_file-error" class="govuk-error-message">' in html
    assert message in html
    assert Evidence.objects.count() == 0
    assert _stored_files(settings) == []


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("empty.pdf", b"", "The selected file is empty."),
        (
            "setup.pdf",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200 + b"PE\x00\x00",
            "its content is not",
        ),
        ("elf.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "its content is not"),
        ("page.pdf", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "its content is not"),
        ("notes.txt", b"<html><script>alert(1)</script></html>", "web page markup"),
        ("tool.exe", b"MZ\x90\x00", "The selected file must be one of"),
    ],
)
def test_bad_files_are_refused_with_a_message_and_nothing_stored(client, started, settings, filename, content, message):
    upload = SimpleUploadedFile(filename, content, content_type="application/pdf")
    response = client.post(reverse("tracker:add-evidence", args=[started.pk]), {**_fields(started), "file": upload})
    _assert_refused(response, settings, message)


def test_a_file_over_the_size_limit_is_refused(client, started, settings):
    settings.EVIDENCE_MAX_BYTES = 1024
    upload = SimpleUploadedFile("big.pdf", PDF_BYTES + b"%" * 2048, content_type="application/pdf")
    response = client.post(reverse("tracker:add-evidence", args=[started.pk]), {**_fields(started), "file": upload})
    _assert_refused(response, settings, "The selected file must be smaller than 1 KB")


def test_the_size_limit_defaults_to_20_megabytes(settings, monkeypatch):
    # Read the settings file afresh without EVIDENCE_MAX_BYTES in the environment: the value already
    # loaded may have come from the environment, and is whatever the settings said at start-up.
    monkeypatch.delenv("EVIDENCE_MAX_BYTES", raising=False)
    default = runpy.run_path(str(Path(settings.BASE_DIR) / "config" / "settings.py"))["EVIDENCE_MAX_BYTES"]
    settings.EVIDENCE_MAX_BYTES = default

    twenty_megabytes = 20 * 1024 * 1024
    at_the_limit = PDF_BYTES + b"%" * (twenty_megabytes - len(PDF_BYTES))
    assert check_upload(SimpleUploadedFile("big.pdf", at_the_limit, content_type="application/pdf"))
    with pytest.raises(UploadRejected, match="must be smaller than 20 MB"):
        check_upload(SimpleUploadedFile("big.pdf", at_the_limit + b"%", content_type="application/pdf"))


@pytest.mark.parametrize(
    "filename", ["../../etc/cron.d/evil.pdf", "..\\..\\windows\\evil.pdf", "..", "/etc/passwd.pdf"]
)
def test_a_path_traversal_filename_is_refused_not_silently_renamed(client, started, settings, filename):
    response = _raw_multipart(
        client, reverse("tracker:add-evidence", args=[started.pk]), _fields(started), filename, PDF_BYTES
    )
    _assert_refused(response, settings, "The file name must be a plain name without folders")


def test_a_plain_filename_sent_the_same_raw_way_is_accepted(client, started, settings):
    response = _raw_multipart(
        client, reverse("tracker:add-evidence", args=[started.pk]), _fields(started), "audit.pdf", PDF_BYTES
    )
    assert response.status_code == 302
    evidence = Evidence.objects.get()
    assert evidence.original_filename == "audit.pdf"
    assert evidence.content_type == "application/pdf"
    stored = _stored_files(settings)
    assert len(stored) == 1 and stored[0].read_bytes() == PDF_BYTES
    assert "audit" not in stored[0].name  # a generated name


def test_a_file_evidence_item_needs_a_file(client, started, settings):
    response = client.post(reverse("tracker:add-evidence", args=[started.pk]), _fields(started))
    _assert_refused(response, settings, "Select a file to upload")


def test_hostile_text_is_escaped_on_the_recommendation_page(client, rec, olly):
    rec.finding.quotations.update(text=HOSTILE)
    rec.finding.summary = HOSTILE
    rec.finding.save()
    workflow.post_update(rec, by=olly, narrative=HOSTILE)
    workflow.add_evidence(rec, by=olly, kind="note", category="output", description=HOSTILE, note=HOSTILE)
    client.force_login(olly)
    html = client.get(rec.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in html
    assert html.count(ESCAPED) >= 5  # quote, summary, update, evidence description and note
    assert "{{ 7|add:1 }}" in html and ">8<" not in html


def test_hostile_text_is_escaped_in_the_admin(admin_client, rec, olly):
    rec.finding.quotations.update(text=HOSTILE)
    update = workflow.post_update(rec, by=olly, narrative=HOSTILE)
    for url in (
        reverse("admin:tracker_finding_change", args=[rec.finding.pk]),
        reverse("admin:tracker_progressupdate_change", args=[update.pk]),
        reverse("admin:tracker_recommendation_change", args=[rec.pk]),
    ):
        response = admin_client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert "<script>alert(1)" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
    assert ProgressUpdate.objects.count() == 1

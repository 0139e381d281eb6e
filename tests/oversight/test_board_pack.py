"""The board pack: the page, and a PDF that opens (pdftoppm turns it into a picture) with the same content."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tests.browser import ARTIFACTS
from tests.factories import EvidenceFactory
from tests.oversight.conftest import content, fetch
from tracker import boardpack, workflow
from tracker.models import AccessLog, Recommendation, RecommendationEvent

pytestmark = pytest.mark.django_db

PDFTOPPM, PDFTOTEXT = shutil.which("pdftoppm"), shutil.which("pdftotext")  # Debian's poppler-utils


@pytest.fixture
def meeting(cleveland, lead, olly, otto):
    """Since 1 February: CC1 moved to otto and its target date put back, with reasons; an older change
    (from January) that the pack must leave out; an update from olly; CC2 awaiting assurance."""
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    cc1, cc2 = recs["CC1"], recs["CC2"]
    workflow.assign_owner(cc1, by=lead, owner=olly, reason="First owner")
    RecommendationEvent.objects.filter(recommendation=cc1).update(
        at=timezone.make_aware(dt.datetime(2026, 1, 10, 9, 0))
    )
    workflow.post_update(cc1, by=olly, narrative="Missing-episode audit started in all three districts.", rag="amber")
    workflow.assign_owner(cc1, by=lead, owner=otto, reason="Moved to the exploitation team")
    workflow.change_target_date(cc1, by=lead, target_date=dt.date(2026, 6, 30))
    workflow.change_target_date(cc1, by=lead, target_date=dt.date(2026, 9, 30), reason="Partner data arrives late")
    workflow.assign_owner(cc2, by=lead, owner=olly)
    Recommendation.objects.filter(pk=cc2.pk).update(status=Recommendation.Status.AWAITING_ASSURANCE)
    EvidenceFactory(recommendation=cc2, added_by=olly)
    return cleveland


SINCE = {"since": "2026-02-01"}


def test_the_pack_holds_counts_updates_changes_since_the_date_and_what_awaits_assurance(meeting, rita, olly):
    pack = boardpack.build(rita, meeting, since=dt.date(2026, 2, 1))
    assert pack.total == 19
    assert dict((v, n) for v, _, n in pack.by_status)["awaiting_assurance"] == 1
    cc1 = next(r for r in pack.recommendations if r.reference == "CC1")
    assert (cc1.owner.username, cc1.rag, cc1.target_date) == ("otto", "amber", dt.date(2026, 9, 30))
    assert cc1.latest_update_text == "Missing-episode audit started in all three districts."
    assert [(e.action, e.new_value, e.reason) for e in pack.changes] == [
        ("owner_changed", str(cc1.owner), "Moved to the exploitation team"),
        ("target_date_changed", "2026-06-30", ""),
        ("target_date_changed", "2026-09-30", "Partner data arrives late"),
        ("owner_changed", str(olly), ""),  # CC2
    ]  # not January's "First owner"
    assert [(r.reference, r.pending_evidence) for r in pack.awaiting] == [("CC2", 1)]


def test_the_page_renders_for_reviewers_viewers_and_leads(client, meeting, rita, vic, lead):
    for user in (rita, vic, lead):
        client.force_login(user)
        response = client.get(reverse("tracker:board-pack", args=[meeting.pk]), SINCE)
        assert response.status_code == 200
        html = response.content.decode()
        assert "Partner data arrives late" in html
        assert "Moved to the exploitation team" in html
        assert "First owner" not in html
        assert "Missing-episode audit started" in html
        assert html.count('class="pack-rec"') == 19
        assert f'href="/inspections/{meeting.pk}/board-pack.pdf?since=2026-02-01"' in html


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"since-day": "30", "since-month": "2", "since-year": "2026"}, "The date must be a real date"),
        ({"since-day": "1", "since-month": "2", "since-year": ""}, "The date must include a year"),
        ({"since": "2026-02-30"}, "The date must include a day and month"),
    ],
)
def test_a_bad_date_is_explained_and_the_default_period_used(client, meeting, rita, asked, message):
    client.force_login(rita)
    response = client.get(reverse("tracker:board-pack", args=[meeting.pk]), asked)
    assert response.status_code == 200
    html = response.content.decode()
    assert "There is a problem" in html and message in html
    assert f"since {boardpack.default_since():%-d %B %Y}" in html


def test_the_date_is_typed_as_day_month_and_year(client, meeting, rita):
    client.force_login(rita)
    response = client.get(
        reverse("tracker:board-pack", args=[meeting.pk]), {"since-day": "1", "since-month": "2", "since-year": "2026"}
    )
    html = response.content.decode()
    assert "changes since 1 February 2026" in html
    assert 'name="since-day"' in html and 'inputmode="numeric"' in html


def test_the_inspection_page_links_to_the_pack(client, meeting, rita):
    client.force_login(rita)
    html = client.get(reverse("tracker:inspection", args=[meeting.pk])).content.decode()
    assert f'href="/inspections/{meeting.pk}/board-pack/"' in html


def test_owners_get_403_and_other_organisations_404(client, meeting, olly, mallory):
    client.force_login(olly)
    assert client.get(reverse("tracker:board-pack", args=[meeting.pk])).status_code == 403
    assert client.get(reverse("tracker:board-pack-pdf", args=[meeting.pk])).status_code == 403
    client.force_login(mallory)
    assert client.get(reverse("tracker:board-pack", args=[meeting.pk])).status_code == 404
    assert client.get(reverse("tracker:board-pack-pdf", args=[meeting.pk])).status_code == 404


@pytest.mark.skipif(not (PDFTOPPM and PDFTOTEXT), reason="needs poppler-utils (make install)")
def test_the_pdf_opens_and_shows_the_same_content(client, meeting, rita, tmp_path, worker):
    client.force_login(rita)
    response = fetch(client, reverse("tracker:board-pack-pdf", args=[meeting.pk]), SINCE)  # made by the worker
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    body = content(response)
    assert body.startswith(b"%PDF-")
    pdf = tmp_path / "board-pack.pdf"
    pdf.write_bytes(body)

    subprocess.run(  # noqa: S603 (fixed arguments)
        [PDFTOPPM, "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(tmp_path / "page1")],
        check=True,
        timeout=60,
    )
    picture = tmp_path / "page1.png"
    with Image.open(picture) as image:
        assert image.width > 400 and image.height > 600  # A4 at 60 dpi is 496 x 702
        grey = image.convert("L")
        dark = sum(grey.histogram()[:128])
        assert dark > 2000, "the first page is (nearly) blank"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(picture, ARTIFACTS / "oversight-board-pack-pdf-page1.png")

    text = subprocess.run(  # noqa: S603
        [PDFTOTEXT, str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    text = " ".join(text.split())  # lines wrap in the PDF
    assert "National child protection inspection of Cleveland Police (2025)" in text
    assert "Partner data arrives late" in text
    assert "First owner" not in text
    log = AccessLog.objects.get()
    assert (log.user, log.action, log.detail["format"], log.detail["rows"]) == (rita, "export", "pdf", 19)

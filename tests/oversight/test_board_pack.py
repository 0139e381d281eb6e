"""The board pack: the page, and a PDF that opens (pdftoppm turns it into a picture) with the same content."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tests.browser import ARTIFACTS
from tests.factories import EvidenceFactory
from tests.oversight.conftest import content, fetch
from tracker import boardpack, oversight_views, workflow
from tracker.models import AccessLog, Recommendation, RecommendationEvent

pytestmark = pytest.mark.django_db

PDFTOPPM, PDFTOTEXT = shutil.which("pdftoppm"), shutil.which("pdftotext")  # Debian's poppler-utils
PDFINFO = shutil.which("pdfinfo")


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
    # The stored values, as a reader would say them.
    assert [(e.old_text, e.new_text) for e in pack.changes[1:3]] == [
        ("No target date", "30 June 2026"),
        ("30 June 2026", "30 September 2026"),
    ]


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
        assert "Executive summary" in html and "What changed since 1 February 2026" in html


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


@pytest.fixture
def exceptions(frozen, meeting, lead, olly):
    """On 18 March 2026, on top of the meeting: OBS1 rated red, OBS2's review a week overdue, CS1's target date passed
    without being moved."""
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=meeting).with_related()}
    workflow.assign_owner(recs["OBS1"], by=lead, owner=olly)
    workflow.post_update(recs["OBS1"], by=olly, narrative="Partner referrals are not yet flowing.", rag="red")
    today = timezone.localdate()
    # Written directly: the workflow moves review dates only forwards, and a test needs one in the past.
    Recommendation.objects.filter(pk=recs["OBS2"].pk).update(next_review_due=today - dt.timedelta(days=7))
    workflow.change_target_date(recs["CS1"], by=lead, target_date=today + dt.timedelta(days=10))
    Recommendation.objects.filter(pk=recs["CS1"].pk).update(target_date=today - dt.timedelta(days=3))
    return meeting


def test_the_executive_summary_counts_what_changed_in_the_last_30_days_and_names_the_exceptions(exceptions, rita):
    pack = boardpack.build(rita, exceptions, since=boardpack.default_since())

    assert pack.since_is_default and pack.period.startswith("in the last 30 days (since ")
    assert pack.activity == [
        (2, "progress updates"),  # CC1's and OBS1's
        (2, "RAG ratings changed"),
        (3, "owners changed"),  # CC1's January owner is before the period
        (3, "target dates set or moved"),
    ]
    assert [r.reference for r in pack.reds] == ["OBS1"]
    assert [(r.reference, r.days_late) for r in pack.overdue_list] == [("OBS2", 7)]
    slips = {slip.rec.reference: slip for slip in pack.slipped}
    assert set(slips) == {"CC1", "CS1"}
    cc1, cs1 = slips["CC1"], slips["CS1"]
    assert (cc1.first_target, cc1.reason, cc1.passed) == (dt.date(2026, 6, 30), "Partner data arrives late", False)
    assert (cs1.first_target, cs1.reason, cs1.passed) == (None, "", True)
    assert pack.exception_count == 4


def test_the_page_shows_the_summary_in_words_without_system_noise(client, exceptions, rita):
    client.force_login(rita)
    html = client.get(reverse("tracker:board-pack", args=[exceptions.pk])).content.decode()

    assert "Executive summary" in html
    assert "What changed in the last 30 days (since " in html
    assert "1 is rated red, 1 has its review overdue and 2 have target dates put back or passed" in html
    assert "Rated red (1)" in html and "Partner referrals are not yet flowing." in html
    assert "Reviews overdue (1)" in html
    assert "Target dates put back or passed (2)" in html
    assert "30 June 2026" in html and "Partner data arrives late" in html
    assert "Passed without a new date being agreed" in html  # CS1: a reason the board can read
    assert "First target date set" in html  # CC1's first date needed no reason: said so, not "None given"
    for noise in ("None given", "Demo set-up", ">None<", "2026-06-30", "2026-09-30", "Jan 2026", "Feb 2026"):
        assert noise not in html, noise


def test_pdf_rows_are_never_split_across_pages_and_headings_stay_with_their_content(exceptions, rita):
    html = render_to_string(
        "tracker/oversight/board_pack_pdf.html", {"pack": boardpack.build(rita, exceptions, since=dt.date(2026, 2, 1))}
    )
    assert "tr, li, .pack-rec { break-inside: avoid; page-break-inside: avoid; }" in html
    assert "thead { display: table-header-group; }" in html  # a long table repeats its header on each page
    assert "h1, h2, h3, h4 { break-after: avoid;" in html


@pytest.mark.skipif(not PDFINFO, reason="needs poppler-utils (make install)")
def test_the_pdf_is_tagged_for_screen_readers_with_its_title_and_language(exceptions, rita, tmp_path):
    pdf = tmp_path / "pack.pdf"
    pdf.write_bytes(boardpack.render_pdf(boardpack.build(rita, exceptions, since=dt.date(2026, 2, 1))))

    info = subprocess.run([PDFINFO, str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout  # noqa: S603
    assert "Tagged:          yes" in info
    assert "Title:           Board pack: National child protection inspection of Cleveland Police (2025)" in info
    structure = subprocess.run(  # noqa: S603
        [PDFINFO, "-struct", str(pdf)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    tags = {line.split()[0].rstrip(":") for line in structure.splitlines() if line.strip()}
    assert {"Document", "H1", "H2", "H3", "Table", "TH", "TD", "L", "LI"} <= tags, tags
    metadata = subprocess.run(  # noqa: S603
        [PDFINFO, "-meta", str(pdf)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert "pdfuaid:part" in metadata.replace('"', "").replace("'", "") or "pdfuaid" in metadata  # declares PDF/UA-1


def test_the_navigation_and_the_dashboard_lead_to_the_latest_pack(client, cleveland, rita, olly):
    client.force_login(rita)
    home = client.get(reverse("tracker:dashboard")).content.decode()
    assert 'href="/board-pack/">Board pack</a>' in home  # the navigation
    assert 'href="/board-pack/">Board pack for the latest inspection</a>' in home
    assert f'href="/inspections/{cleveland.pk}/board-pack/">board pack' in home  # each inspection's row

    response = client.get(reverse("tracker:board-pack-latest"))
    assert response["Location"] == reverse("tracker:board-pack", args=[cleveland.pk])  # 2025, not 2017 or 2018
    page = client.get(response["Location"]).content.decode()
    assert 'aria-current="page">Board pack</a>' in page

    client.force_login(olly)  # an owner has no board pack, and no link to one
    assert client.get(reverse("tracker:board-pack-latest")).status_code == 403
    assert 'href="/board-pack/"' not in client.get(reverse("tracker:home")).content.decode()


def test_an_organisation_without_recommendations_has_no_latest_pack(client, mallory):
    client.force_login(mallory)
    assert client.get(reverse("tracker:board-pack-latest")).status_code == 404


def test_the_page_lists_the_first_of_each_list_and_the_pdf_all_of_them(client, meeting, rita, monkeypatch):
    """A pack of thousands stays a page a browser can show: each list is cut at PACK_PAGE_ROWS, saying so, with
    the list page and the PDF for the rest; the PDF (the same body, made by the worker) is never cut."""
    monkeypatch.setattr(oversight_views, "PACK_PAGE_ROWS", 5)
    client.force_login(rita)

    html = client.get(reverse("tracker:board-pack", args=[meeting.pk]), SINCE).content.decode()

    assert html.count('class="pack-rec"') == 5
    assert "The first 5 of 19 are shown here. The PDF has them all" in html
    assert f'href="/recommendations/?inspection={meeting.pk}"' in html
    pack = boardpack.build(rita, meeting, since=dt.date(2026, 2, 1))
    body = render_to_string("tracker/oversight/board_pack_pdf.html", {"pack": pack})
    assert body.count('class="pack-rec"') == 19 and "are shown here" not in body

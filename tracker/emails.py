"""Every email the tracker sends. Each one is a subject, a plain-text template and an HTML template.

Emails leave the building, so they carry references, titles, stages, dates and links only: never a
finding's summary or quote, an update's narrative, evidence, or anything about a child. Notifications
of workflow steps carry even less: what kind of step happened and a link, never a title, a reference
or a reason (the reason is on the page, behind sign-in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from tracker import ledger_items
from tracker.models import Reminder, User

# Most pressing first within a digest.
_STAGE_ORDER = {
    Reminder.Stage.ESCALATION: 0,
    Reminder.Stage.OVERDUE: 1,
    Reminder.Stage.UNOWNED: 2,
    Reminder.Stage.DUE_SOON: 3,
}


@dataclass(frozen=True)
class DigestItem:
    """One line of a digest. Deliberately no room for case details."""

    reference: str
    title: str
    stage: str
    stage_label: str
    review_due: dt.date
    url: str

    @property
    def review_due_text(self) -> str:
        # "5 May 2026", formatted once here rather than by the template filter for every item.
        return f"{self.review_due.day} {self.review_due:%B %Y}"

    @classmethod
    def from_reminder(cls, reminder: Reminder) -> DigestItem:
        rec = reminder.recommendation
        return cls(
            reference=rec.finding.reference,
            title=rec.title,
            stage=reminder.stage,
            stage_label=Reminder.Stage(reminder.stage).label,
            review_due=reminder.review_due,
            url=absolute_url(rec.get_absolute_url()),
        )


# Most pressing first among the other dates.
_DATE_ORDER = {
    Reminder.Stage.DEADLINE_DUE: 0,
    Reminder.Stage.ACTION_OVERDUE: 1,
    Reminder.Stage.MEASURE_DATA_DUE: 2,
    Reminder.Stage.DEADLINE_APPROACHING: 3,
    Reminder.Stage.ACTION_DUE_SOON: 4,
}


@dataclass(frozen=True)
class DateItem:
    """One date that is not a review: a plan action's, a measure's data, an inspection deadline.

    A fixed sentence saying what kind of item it is, the recommendation's reference (as a review item
    shows it; none for a deadline, which belongs to an inspection), the date and a link: never an
    action's description, a measure's name or an inspection's title.
    """

    stage: str
    stage_label: str
    text: str
    reference: str | None
    due: dt.date
    url: str

    @property
    def due_text(self) -> str:
        return f"{self.due.day} {self.due:%B %Y}"

    @classmethod
    def from_reminder(cls, reminder: Reminder) -> DateItem:
        text, reference, path = ledger_items.describe(reminder)
        return cls(
            stage=reminder.stage,
            stage_label=Reminder.Stage(reminder.stage).label,
            text=text,
            reference=reference,
            due=reminder.due,
            url=absolute_url(path),
        )


# What each notification says. Deliberately the same words whatever the recommendation: no case details.
NOTICE_TEXT = {
    Reminder.Stage.ASSIGNED: "You are now the owner of a recommendation.",
    Reminder.Stage.UNASSIGNED: "A recommendation you owned has been given to someone else, or to nobody.",
    Reminder.Stage.SUBMITTED: "A recommendation has been submitted for assurance and awaits a reviewer's decision.",
    Reminder.Stage.EVIDENCE_ACCEPTED: "A reviewer made a decision on evidence for a recommendation you own: accepted.",
    Reminder.Stage.EVIDENCE_REJECTED: (
        "A reviewer made a decision on evidence for a recommendation you own: rejected. The reason is on its page."
    ),
    Reminder.Stage.CLOSED: "A reviewer made an assurance decision on a recommendation you own: accepted and closed.",
    Reminder.Stage.RETURNED: (
        "A reviewer made an assurance decision on a recommendation you own: returned to you. The reason is on its page."
    ),
    Reminder.Stage.REOPENED: "A recommendation you own has been reopened. The reason is on its page.",
    Reminder.Stage.TARGET_MOVED: "A recommendation's target date has been moved or removed. The reason is on its page.",
}
# Work waiting on the reader first.
_NOTICE_ORDER = {stage: n for n, stage in enumerate(NOTICE_TEXT)}
for _first in (Reminder.Stage.EVIDENCE_REJECTED, Reminder.Stage.RETURNED, Reminder.Stage.SUBMITTED):
    _NOTICE_ORDER[_first] = -1


@dataclass(frozen=True)
class Notice:
    """One notification of a workflow step. Only a fixed sentence and a link: no room for case details."""

    stage: str
    stage_label: str
    text: str
    url: str
    at: dt.datetime

    @classmethod
    def from_reminder(cls, reminder: Reminder) -> Notice:
        return cls(
            stage=reminder.stage,
            stage_label=Reminder.Stage(reminder.stage).label,
            text=NOTICE_TEXT[reminder.stage],
            url=absolute_url(reminder.recommendation.get_absolute_url()),
            at=reminder.created_at,
        )


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _message(
    template: str, context: dict, to: Sequence[str], headers: dict[str, str] | None = None
) -> EmailMultiAlternatives:
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"tracker/email/{template}_subject.txt", context).split())
    text = render_to_string(f"tracker/email/{template}.txt", context)
    html = render_to_string(f"tracker/email/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(to),
        # Out-of-office robots should not answer a reminder (RFC 3834).
        headers={"Auto-Submitted": "auto-generated", **(headers or {})},
    )
    message.attach_alternative(html, "text/html")
    return message


def review_digest(
    recipient: User, items: Sequence[DigestItem], notices: Sequence[Notice] = (), dates: Sequence[DateItem] = ()
) -> EmailMultiAlternatives:
    """One email listing every review that needs this person's attention today, the other dates that do
    (plan actions, measures' data, inspection deadlines), and the workflow steps they have not yet been
    told of."""
    items = sorted(items, key=lambda item: (_STAGE_ORDER.get(item.stage, 9), item.review_due, item.reference))
    dates = sorted(dates, key=lambda item: (_DATE_ORDER.get(item.stage, 9), item.due, item.url))
    notices = sorted(notices, key=lambda notice: (_NOTICE_ORDER.get(notice.stage, 99), notice.at))
    return _message(
        "review_digest",
        {
            "recipient": recipient,
            "name": recipient.first_name or recipient.get_username(),
            "items": items,
            "count": len(items),
            "notices": notices,
            "notice_count": len(notices),
            "dates": dates,
            "date_count": len(dates),
            "home_url": absolute_url("/"),
            "settings_url": absolute_url(reverse("tracker:notification-settings")),
        },
        to=[recipient.email],
    )

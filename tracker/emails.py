"""Every email the tracker sends. Each one is a subject, a plain-text template and an HTML template.

Emails leave the building, so they carry references, titles, stages, dates and links only: never a
finding's summary or quote, an update's narrative, evidence, or anything about a child.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

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


def review_digest(recipient: User, items: Sequence[DigestItem]) -> EmailMultiAlternatives:
    """One email listing every review that needs this person's attention today."""
    items = sorted(items, key=lambda item: (_STAGE_ORDER.get(item.stage, 9), item.review_due, item.reference))
    return _message(
        "review_digest",
        {
            "recipient": recipient,
            "name": recipient.first_name or recipient.get_username(),
            "items": items,
            "count": len(items),
            "home_url": absolute_url("/"),
        },
        to=[recipient.email],
    )

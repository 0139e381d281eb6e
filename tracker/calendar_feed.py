"""A private iCalendar feed per user: the review and target dates of the recommendations they own.

Outlook fetches the feed without a session, so the URL itself is the credential: a random token
shown once, of which only a SHA-256 hash is stored. Making a new link revokes the old one. The feed
carries references, titles, dates and a link only, never case details.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from icalendar import Calendar, Event

from tracker import permissions
from tracker.models import CalendarFeedToken

if TYPE_CHECKING:
    from tracker.models import User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def active_token(user: User) -> CalendarFeedToken | None:
    return CalendarFeedToken.objects.filter(user=user, revoked_at__isnull=True).first()


def issue_token(user: User) -> str:
    """A new feed token for the user (returned once, never stored); any earlier link stops working."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        revoke_tokens(user)
        CalendarFeedToken.objects.create(user=user, token_hash=_hash(token))
    return token


def revoke_tokens(user: User) -> int:
    return CalendarFeedToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def user_for_token(token: str) -> User | None:
    """The active user behind a live token, or None for a revoked, unknown or malformed one."""
    if not token or len(token) > 100:
        return None
    found = (
        CalendarFeedToken.objects.select_related("user")
        .filter(token_hash=_hash(token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if found is None:
        return None
    CalendarFeedToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
    return found.user


def feed_url(token: str) -> str:
    from django.urls import reverse

    return f"{settings.SITE_URL}{reverse('tracker:calendar-feed', args=[token])}"


def build_calendar(user: User) -> bytes:
    """All-day events for each open recommendation the user owns: its next review and its target date."""
    host = settings.SITE_URL.split("://", 1)[-1].split("/", 1)[0] or "tracker"
    calendar = Calendar()
    calendar.add("prodid", "-//Safeguarding Recommendation Tracker//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Recommendation reviews and target dates")
    stamp = timezone.now()
    owned = (
        permissions.visible_recommendations(user)
        .filter(owner=user)
        .open()
        .select_related("finding")
        .order_by("next_review_due", "finding__reference")
    )
    for rec in owned:
        link = f"{settings.SITE_URL}{rec.get_absolute_url()}"
        dates = [("review", "Review due", rec.next_review_due)]
        if rec.target_date:
            dates.append(("target", "Target date", rec.target_date))
        for kind, label, day in dates:
            event = Event()
            event.add("uid", f"{kind}-{rec.pk}@{host}")
            event.add("dtstamp", stamp)
            event.add("dtstart", day)
            event.add("summary", f"{label}: {rec.reference} {rec.title}")
            event.add("description", f"{label} for recommendation {rec.reference}: {rec.title}\n{link}")
            event.add("url", link)
            event.add("transp", "TRANSPARENT")
            calendar.add_component(event)
    return calendar.to_ical()

"""Accounts: sessions that end when idle, ending a person's access, throttled password views, and the
client address that throttling counts by.

This module is also the session engine (``SESSION_ENGINE = "tracker.accounts"``): see ``SessionStore``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.signals import user_login_failed
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tracker import calendar_feed
from tracker.models import User

# How often a session in use has its expiry moved on: the idle timeout is honoured to within this.
REFRESH_EVERY = dt.timedelta(minutes=1)


class SessionStore(DatabaseSessionStore):
    """Database sessions that end after SESSION_COOKIE_AGE seconds without a request.

    Using a session moves its expiry on, like SESSION_SAVE_EVERY_REQUEST, but the new expiry is written
    at most once a minute rather than on every request: the expiry read with the session shows how
    long ago it was last written, so deciding costs no query.
    """

    def _get_session_from_db(self):
        stored = super()._get_session_from_db()
        if stored is not None:
            written = stored.expire_date - dt.timedelta(seconds=self.get_session_cookie_age())
            if timezone.now() - written >= REFRESH_EVERY:
                self.modified = True  # SessionMiddleware saves it with a fresh expiry and cookie
        return stored


def end_sessions(user: User) -> int:
    """Delete every live session of ``user``; returns how many there were.

    Sessions are signed blobs keyed by a random id, so the only way to find one person's is to read
    them; there are as many as people signed in recently, which is few.
    """
    mine = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    Session.objects.filter(pk__in=mine).delete()
    return len(mine)


def deactivate_user(user: User, *, by: User | None) -> int:
    """Stop ``user`` from doing anything more: no sign-in, no session, no API token, no calendar link.

    Nothing of theirs is deleted or reassigned: history keeps pointing at them, and the reminders of
    the recommendations they own go to their organisation's governance leads ("no active owner")
    until a lead assigns a new owner. Safe to call again. Returns the number of sessions ended.
    """
    with transaction.atomic():
        if user.is_active:
            user.is_active = False
            user._history_user = by  # simple-history: who made this change
            user.save(update_fields=["is_active"])
        Token.objects.filter(user=user).delete()
        calendar_feed.revoke_tokens(user)
        return end_sessions(user)


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, as django-axes counts sign-in failures by it.

    Behind TRUSTED_PROXY_COUNT reverse proxies REMOTE_ADDR is the nearest proxy's address, so the
    client is the entry that the outermost trusted proxy appended to X-Forwarded-For; anything
    further left was written by the client and cannot be trusted.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """A wrong current password counts as a failed sign-in (django-axes), so guessing it here is locked out too.

    Without this, a borrowed session could try current passwords without limit. The lockout is the
    sign-in's: the same (username, address) pair, the same limit and cool-off, the same page.
    """

    def __init__(self, user: User, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        credentials = {"username": self.user.get_username()}
        if not AxesProxyHandler.is_allowed(self.request, credentials):
            # AxesMiddleware answers with the lockout page; the password is not even checked.
            self.request.axes_locked_out = True
            self.request.axes_credentials = credentials
            raise ValidationError(settings.AXES_COOLOFF_MESSAGE, code="locked_out")
        old_password = self.cleaned_data["old_password"]
        if not self.user.check_password(old_password):
            user_login_failed.send(sender=__name__, credentials=credentials, request=self.request)
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class ThrottledPasswordChangeView(auth_views.PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}


def _count(key: str) -> int:
    """One more request in the current hour's window for ``key``; returns the count so far."""
    cache.add(key, 0, timeout=60 * 60)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=60 * 60)
        return 1


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """At most PASSWORD_RESET_EMAILS_PER_HOUR reset emails an hour to one address, and as many requests from
    one client address (PASSWORD_RESET_REQUESTS_PER_CLIENT_HOUR).

    Over a limit nothing is sent, but the answer is the same "check your email" page as always: it must not
    reveal whether the address is known, nor that it is being throttled. Every request counts, known
    address or not, for the same reason.
    """

    def form_valid(self, form) -> HttpResponse:
        email = form.cleaned_data["email"].strip().lower()
        # Hashed: the cache keeps no email addresses, and the key is safe for any backend.
        by_address = _count(f"password-reset:email:{hashlib.sha256(email.encode()).hexdigest()}")
        by_client = _count(f"password-reset:client:{client_ip(self.request)}")
        if (
            by_address > settings.PASSWORD_RESET_EMAILS_PER_HOUR
            or by_client > settings.PASSWORD_RESET_REQUESTS_PER_CLIENT_HOUR
        ):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)

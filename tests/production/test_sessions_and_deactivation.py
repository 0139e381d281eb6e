"""Sessions end after inactivity; deactivating someone ends their access at once, and their reminders go to the leads."""

import datetime as dt

import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import RecommendationFactory, UserFactory
from tracker import accounts, calendar_feed, reminders
from tracker.models import CalendarFeedToken, User
from tracker.permissions import Role

HOME = reverse("tracker:home")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get(HOME).status_code == 200
    return client


def redirected_to_sign_in(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_session_ends_after_the_idle_timeout_and_each_request_moves_it_on(olly):
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client = signed_in(olly)
        clock.move_to(start + idle - dt.timedelta(minutes=1))
        assert client.get(HOME).status_code == 200  # active just in time: the expiry moves on
        clock.move_to(start + 2 * idle - dt.timedelta(minutes=2))
        assert client.get(HOME).status_code == 200  # past the first expiry, but not idle for long
        clock.move_to(start + 3 * idle)  # idle for longer than the timeout

        assert redirected_to_sign_in(client.get(HOME))


def test_a_session_in_use_is_written_at_most_once_a_minute_and_its_cookie_lasts_the_idle_timeout(olly):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client = signed_in(olly)
        quiet = client.get(HOME)  # just written at sign-in: nothing to write
        clock.move_to(start + dt.timedelta(minutes=2))
        refreshed = client.get(HOME)

    assert settings.SESSION_COOKIE_NAME not in quiet.cookies
    assert refreshed.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE
    stored = Session.objects.get(session_key=refreshed.cookies[settings.SESSION_COOKIE_NAME].value)
    assert stored.expire_date == start + dt.timedelta(minutes=2, seconds=settings.SESSION_COOKIE_AGE)
    assert settings.SESSION_COOKIE_AGE <= 8 * 60 * 60  # a working day at most; an hour by default


def test_a_lead_unticking_active_in_the_admin_ends_the_persons_sessions_and_tokens(role_permissions, lead, olly):
    olly_phone, olly_desk = signed_in(olly), signed_in(olly)
    someone_else = signed_in(lead)  # another person's session must survive
    token = Token.objects.create(user=olly)
    feed = calendar_feed.issue_token(olly)
    admin = signed_in(lead)
    form = {
        "username": olly.username,
        "first_name": olly.first_name,
        "last_name": olly.last_name,
        "email": olly.email,
        "groups": list(olly.groups.values_list("pk", flat=True)),
        "organisation": olly.organisation_id,
        "job_title": "",
        "escalation_contact": "",
        # "is_active" left out: the box is unticked
    }

    response = admin.post(reverse("admin:tracker_user_change", args=[olly.pk]), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    olly.refresh_from_db()
    assert not olly.is_active
    assert redirected_to_sign_in(olly_phone.get(HOME))
    assert redirected_to_sign_in(olly_desk.get(HOME))
    assert someone_else.get(HOME).status_code == 200
    assert not Token.objects.filter(pk=token.pk).exists()
    assert not CalendarFeedToken.objects.filter(user=olly, revoked_at__isnull=True).exists()
    assert calendar_feed.user_for_token(feed) is None
    change = olly.history.first()
    assert (change.is_active, change.history_user) == (False, lead)


def test_the_bulk_deactivate_action_ends_access_but_never_the_leads_own(role_permissions, lead, olly, otto):
    olly_session, otto_session = signed_in(olly), signed_in(otto)
    admin = signed_in(lead)

    response = admin.post(
        reverse("admin:tracker_user_changelist"),
        {"action": "deactivate", "_selected_action": [olly.pk, otto.pk, lead.pk]},
    )

    assert response.status_code == 302
    assert set(User.objects.filter(is_active=False).values_list("username", flat=True)) == {"olly", "otto"}
    assert redirected_to_sign_in(olly_session.get(HOME)) and redirected_to_sign_in(otto_session.get(HOME))
    assert admin.get(HOME).status_code == 200


def test_deactivate_user_deletes_every_session_of_that_user_and_no_other(olly, otto):
    signed_in(olly), signed_in(olly), signed_in(otto)

    ended = accounts.deactivate_user(olly, by=None)

    assert ended == 2
    remaining = [s.get_decoded().get("_auth_user_id") for s in Session.objects.all()]
    assert remaining == [str(otto.pk)]
    assert accounts.deactivate_user(olly, by=None) == 0  # again: nothing left to end


def test_a_deactivated_users_session_stops_working_on_the_next_request_even_if_not_deleted(olly):
    client = signed_in(olly)
    User.objects.filter(pk=olly.pk).update(is_active=False)  # say, by a bulk update that skipped deactivate_user

    assert redirected_to_sign_in(client.get(HOME))


def test_reminders_for_a_deactivated_owner_go_to_the_governance_leads(transactional_db, org, lead, olly):
    rec = RecommendationFactory(
        finding__inspection__organisation=org, owner=olly, next_review_due=timezone.localdate() + dt.timedelta(days=2)
    )
    accounts.deactivate_user(olly, by=lead)

    reminders.run_sweep()

    assert [message.to for message in mail.outbox] == [[lead.email]]
    assert rec.reference in mail.outbox[0].body
    assert "No owner" in mail.outbox[0].body


def test_someone_who_may_only_view_users_cannot_deactivate_anybody_from_the_admin(role_permissions, org, olly):
    # An assurance reviewer with admin access may list the users of their organisation, nothing more.
    reviewer = UserFactory(username="auditor", organisation=org, roles=[Role.REVIEWER], is_staff=True)
    olly_session = signed_in(olly)
    admin = signed_in(reviewer)
    assert admin.get(reverse("admin:tracker_user_changelist")).status_code == 200

    admin.post(reverse("admin:tracker_user_changelist"), {"action": "deactivate", "_selected_action": [olly.pk]})

    olly.refresh_from_db()
    assert olly.is_active
    assert olly_session.get(HOME).status_code == 200

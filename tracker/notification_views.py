"""The notification settings page: each person chooses, per kind, within minutes or the daily digest.

The rules (who receives which kinds, what may be chosen, that governance leads cannot turn off
escalations) are ``tracker.notifications``'s; this page only shows and saves them.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tracker import notifications, permissions
from tracker.errors import InvalidInput
from tracker.models import User
from tracker.views import staff_page

Delivery = notifications.Delivery
Kind = notifications.Kind

HINTS = {
    Kind.RETURNED: "When a reviewer rejects evidence or returns a submission, or a lead reopens a recommendation you own.",
    Kind.OWNERSHIP: "When a recommendation is given to you, or one of yours to someone else.",
    Kind.ACCEPTED: "When a reviewer accepts evidence on, or closes, a recommendation you own.",
    Kind.AWAITING_ASSURANCE: "When a recommendation is submitted for assurance.",
    Kind.TARGET_MOVED: "When someone moves or removes an agreed target date.",
    Kind.ESCALATIONS: (
        "Badly overdue reviews and recommendations without an owner come from the daily sweep, in the daily "
        "digest. " + notifications.LEADS_CANNOT_TURN_OFF
    ),
}


class _DeliveryField(forms.ChoiceField):
    """Shows the choices this person has, and lets any known value through to the form's own check, so a
    refused choice (escalations off) gets its reason rather than "not a valid choice"."""

    def valid_value(self, value: str) -> bool:
        return value in Delivery.values


class NotificationSettingsForm(forms.Form):
    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        current = notifications.preferences(user)
        for kind in notifications.kinds_for(user):
            self.fields[kind] = _DeliveryField(
                label=Kind(kind).label,
                help_text=HINTS[kind],
                choices=[(d, Delivery(d).label) for d in notifications.allowed_deliveries(kind)],
                widget=forms.RadioSelect,
                initial=current[kind],
                error_messages={"required": f"Choose when to hear of: {Kind(kind).label.lower()}."},
            )

    def clean(self) -> dict:
        cleaned = super().clean()
        for kind, delivery in list(cleaned.items()):  # add_error takes refused choices out
            problem = notifications.refusal(self.user, kind, delivery)
            if problem:
                self.add_error(kind, problem)
        return cleaned


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    if not permissions.roles(request.user) or request.user.organisation_id is None:
        raise permissions.NotPermitted("Your account has no role in the tracker, so it has no notifications.")
    form = NotificationSettingsForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            notifications.set_preferences(request.user, form.cleaned_data)
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Your notification settings have been saved.")
            return redirect("tracker:notification-settings")
    return render(request, "tracker/notification_settings.html", {"form": form}, status=400 if form.errors else 200)

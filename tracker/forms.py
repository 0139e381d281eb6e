"""Forms for the staff pages. They parse and check input; the rules live in workflow and permissions.

Every form that changes a recommendation carries a hidden ``version``: the workflow refuses the
change if the recommendation moved on after the page was loaded.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from tracker import uploads
from tracker.filters import RecommendationFilter
from tracker.models import Evidence, Recommendation, User

RAG_CHOICES = [("", "No change"), *[(value, label) for value, label in Recommendation.Rag.choices if value]]


class StaffForm(forms.Form):
    """Templates render each field through ``tracker/includes/field.html`` with the GOV.UK classes."""

    def add_workflow_error(self, message: str) -> None:
        """A refusal from the workflow: beside the reason field when it is about the reason."""
        field = "reason" if "reason" in self.fields and "reason" in message.lower() else None
        self.add_error(field, message)


class SignInForm(AuthenticationForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Autofocus would skip the skip link and surprise screen reader users.
        self.fields["username"].widget.attrs.pop("autofocus", None)


class VersionedForm(StaffForm):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, recommendation: Recommendation, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("version", recommendation.version)
        self.recommendation = recommendation
        super().__init__(*args, **kwargs)


class ProgressUpdateForm(VersionedForm):
    narrative = forms.CharField(
        label="What has happened since the last update?",
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"required": "Write what has happened since the last update"},
    )
    rag = forms.ChoiceField(label="RAG rating", choices=RAG_CHOICES, required=False, widget=forms.RadioSelect)
    review_completed = forms.BooleanField(label="I have completed a review of this recommendation", required=False)
    submit_for_assurance = forms.BooleanField(
        label="Also submit this recommendation for assurance",
        required=False,
        help_text="Only when the evidence is complete; an assurance reviewer will then check it.",
    )

    def __init__(self, *args, can_submit: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rec = self.recommendation
        due = timezone.localdate() + dt.timedelta(days=rec.review_interval_days)
        moves = f"Moves the next review date from {rec.next_review_due:%-d %B %Y} to {due:%-d %B %Y}."
        self.fields["review_completed"].help_text = moves
        self.fields["rag"].initial = ""
        if not can_submit:
            del self.fields["submit_for_assurance"]


class EvidenceForm(VersionedForm):
    kind = forms.ChoiceField(
        label="What kind of evidence is it?",
        choices=Evidence.Kind.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select whether the evidence is a file, a link or a note"},
    )
    category = forms.ChoiceField(
        label="What does it show?",
        choices=Evidence.Category.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select whether the evidence shows an output or an outcome"},
    )
    description = forms.CharField(
        label="Describe what this evidence shows",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Describe what this evidence shows"},
    )
    file = forms.FileField(
        label="File to upload",
        required=False,
        help_text=f"For a file: {uploads.allowed_extensions()}.",
        error_messages={
            "invalid": "The selected file could not be read; try again",
            "empty": "The selected file is empty.",
        },
    )
    link = forms.URLField(
        label="Link",
        assume_scheme="https",
        required=False,
        help_text="For a link: the full web address, starting https://",
        error_messages={"invalid": "Enter a web address in the correct format, like https://example.org/report"},
    )
    note = forms.CharField(
        label="Note", required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="For a note: the text itself."
    )

    def __init__(self, *args, raw_upload_names: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw_upload_names = raw_upload_names or []
        self.checked: uploads.CheckedUpload | None = None
        limit = _size(settings.EVIDENCE_MAX_BYTES)
        self.fields["file"].help_text = f"For a file: {uploads.allowed_extensions()}, smaller than {limit}."

    def clean(self) -> dict:
        data = super().clean()
        kind = data.get("kind")
        try:
            # Django renames "../x.pdf" to "x.pdf" and drops ".."; refuse what the client actually sent.
            for raw in self.raw_upload_names:
                uploads.clean_filename(raw)
        except uploads.UploadRejected as exc:
            self.add_error("file", str(exc))
            return data
        if kind == Evidence.Kind.FILE:
            upload = data.get("file")
            if not upload and "file" not in self.errors:
                self.add_error("file", "Select a file to upload")
            elif upload:
                try:
                    self.checked = uploads.check_upload(upload)
                except uploads.UploadRejected as exc:
                    self.add_error("file", str(exc))
        elif kind == Evidence.Kind.LINK and not data.get("link") and "link" not in self.errors:
            self.add_error("link", "Enter the web address of the evidence")
        elif kind == Evidence.Kind.NOTE and not (data.get("note") or "").strip():
            self.add_error("note", "Write the note")
        return data


class SubmitForm(VersionedForm):
    """Only the version: submitting is a confirmation."""


class AssuranceDecisionForm(VersionedForm):
    CLOSE, REJECT = "close", "reject"

    decision = forms.ChoiceField(
        label="Your decision",
        choices=[(CLOSE, "Accept and close the recommendation"), (REJECT, "Reject the submission: more work needed")],
        widget=forms.RadioSelect,
        error_messages={"required": "Select whether to close the recommendation or reject the submission"},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Required when rejecting: say what is missing.",
    )


class EvidenceReviewForm(VersionedForm):
    ACCEPT, REJECT = "accept", "reject"

    decision = forms.ChoiceField(
        label="Your verdict",
        choices=[(ACCEPT, "Accept this evidence"), (REJECT, "Reject this evidence")],
        widget=forms.RadioSelect,
        error_messages={"required": "Select whether to accept or reject this evidence"},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Required when rejecting: say why it does not show what it claims.",
    )


class ReopenForm(VersionedForm):
    reason = forms.CharField(
        label="Why is it being reopened?",
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Give a reason for reopening"},
    )


class ReassignForm(VersionedForm):
    owner = forms.ModelChoiceField(
        label="New owner",
        queryset=User.objects.none(),
        required=False,
        empty_label="No owner",
    )
    reason = forms.CharField(label="Reason (optional)", required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rec = self.recommendation
        self.fields["owner"].queryset = User.objects.filter(organisation_id=rec.organisation_id, is_active=True)
        self.fields["owner"].initial = rec.owner_id


class TargetDateForm(VersionedForm):
    target_date = forms.DateField(
        label="New target date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        input_formats=["%Y-%m-%d", "%d/%m/%Y", "%d %m %Y"],
        help_text="For example, 2027-03-31. Leave empty for no target date.",
        error_messages={"invalid": "Enter the target date as a real date, for example 2027-03-31"},
    )
    reason = forms.CharField(
        label="Reason for the change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when moving an agreed target date.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target_date"].initial = self.recommendation.target_date


SORTS = {
    "due": ("next_review_due", "finding__reference"),
    "-due": ("-next_review_due", "finding__reference"),
    "reference": ("finding__reference", "pk"),
    "title": ("title", "pk"),
    "status": ("status", "next_review_due"),
    "rag": ("rag", "next_review_due"),
    "target": ("target_date", "next_review_due"),
    "owner": ("owner__last_name", "owner__first_name", "next_review_due"),
}
SORT_LABELS = {
    "due": "Next review due (soonest first)",
    "-due": "Next review due (latest first)",
    "reference": "Reference",
    "title": "Title",
    "status": "Status",
    "rag": "RAG",
    "target": "Target date",
    "owner": "Owner",
}


def staff_filter(data, queryset, request) -> RecommendationFilter:
    """The shared FilterSet, with widgets that read well as a GOV.UK form without JavaScript."""
    filterset = RecommendationFilter(data, queryset=queryset, request=request)
    fields = filterset.form.fields
    for name in ("status", "rag"):
        fields[name].widget = forms.CheckboxSelectMultiple(choices=fields[name].choices)
    fields["overdue"].widget = forms.Select(choices=[("", "Any"), ("true", "Overdue only"), ("false", "Not overdue")])
    fields["overdue"].label = "Review overdue"
    for name in ("inspection", "owner", "theme"):
        fields[name].empty_label = "Any"
        fields[name].widget.choices = fields[name].choices
    for name in ("due_before", "due_after"):
        fields[name].widget = forms.DateInput(attrs={"type": "date"})
    fields["q"].help_text = "A reference such as CC1, or words from the title, summary or outcome measure."
    return filterset


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"

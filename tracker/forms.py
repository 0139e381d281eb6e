"""Forms for the staff pages. They parse and check input; the rules live in workflow and permissions.

Every form that changes a recommendation carries a hidden ``version``: the workflow refuses the
change if the recommendation moved on after the page was loaded.
"""

from __future__ import annotations

import calendar
import datetime as dt

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.forms.boundfield import BoundField
from django.utils.html import format_html

from tracker import inbox, permissions, uploads, workflow
from tracker.filters import RecommendationFilter
from tracker.models import MAX_REVIEW_INTERVAL_DAYS, SHORT_TEXT, Evidence, Inspection, Recommendation, SavedFilter

RAG_CHOICES = [("", "No change"), *[(value, label) for value, label in Recommendation.Rag.choices if value]]


# A choice of person (an owner, a supplier of data) is a list while the organisation's eligible people are
# few, and a box for a username, email address or full name when they are more: thousands of <option>s
# made a page of 280 kB that took half a second, on every form that names someone.
PEOPLE_LISTED = 200


class TypedPerson(str):
    """What was typed in a person box (a username, email address or full name), as against a list's id."""


class PersonWidget(forms.Select):
    """A ``<select>`` of at most ``PEOPLE_LISTED`` people, else a text box holding the chosen one's username
    and a hidden ``<name>-typed`` marker, so that what comes back is read as typed text, never as an id."""

    def value_from_datadict(self, data, files, name):
        value = super().value_from_datadict(data, files, name)
        return TypedPerson(value) if value is not None and data.get(f"{name}-typed") else value

    def get_context(self, name, value, attrs):
        field = self.choices.field
        # One bounded read decides, and is the list: never every person, and no second query for the list.
        people = list(self.choices.queryset[: PEOPLE_LISTED + 1])
        if len(people) <= PEOPLE_LISTED:
            empty = [] if field.empty_label is None else [("", field.empty_label)]
            choices = [*empty, *((person.pk, field.label_from_instance(person)) for person in people)]
            return forms.Select(self.attrs, choices).get_context(name, value, attrs)
        context = forms.TextInput().get_context(name, self._shown(value), attrs)
        widget = context["widget"]
        widget["attrs"]["class"] = widget["attrs"].get("class", "").replace("govuk-select", "govuk-input")
        widget["attrs"].update(autocomplete="off", spellcheck="false")
        widget["typed_hint"] = f"{widget['attrs'].get('id') or name}-typed-hint"
        described = widget["attrs"].get("aria-describedby", "")
        widget["attrs"]["aria-describedby"] = f"{described} {widget['typed_hint']}".strip()
        return context

    def _shown(self, value) -> str:
        """What the box holds: the text as typed (shown again with its error), or the chosen one's username."""
        if value in (None, ""):
            return ""
        if isinstance(value, TypedPerson):
            return str(value)
        person = self.choices.queryset.filter(pk=value).first()
        return person.username if person else ""

    def render(self, name, value, attrs=None, renderer=None):
        context = self.get_context(name, value, attrs)
        hint = context["widget"].get("typed_hint")
        if hint is None:
            return self._render(self.template_name, context, renderer)
        box = self._render(forms.TextInput.template_name, context, renderer)
        return format_html(
            '<div class="govuk-hint" id="{}">Type their username, email address or full name.</div>{}'
            '<input type="hidden" name="{}-typed" value="1">',
            hint,
            box,
            name,
        )


class PersonField(forms.ModelChoiceField):
    """One of ``queryset`` (the organisation's eligible people), chosen from the list or typed: a list posts
    the person's id; a box (``TypedPerson``) their username, then any case of it or their email address, then
    their full name when only one of them has it; never an id. Only someone in ``queryset`` is accepted."""

    widget = PersonWidget
    default_error_messages = {
        "not_found": "No active owner or governance lead of this organisation has that username, email address or name",
        "ambiguous": "More than one person has that name: enter their username or email address instead",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, TypedPerson):
            return super().to_python(value)  # the list's id, or its own "choose from the list" message
        typed = value.strip()
        full_name = Concat("first_name", Value(" "), "last_name")
        for matches in (
            Q(username=typed),  # exact first: usernames differing only in case are different people
            Q(username__iexact=typed) | Q(email__iexact=typed),
            Q(full__iexact=typed),
        ):
            found = list(self.queryset.alias(full=full_name).filter(matches)[:2])
            if len(found) == 1:
                return found[0]
            if found:
                raise ValidationError(self.error_messages["ambiguous"], code="ambiguous")
        raise ValidationError(self.error_messages["not_found"], code="not_found")


class StaffForm(forms.Form):
    """Templates render each field through ``tracker/includes/field.html`` with the GOV.UK classes."""

    def add_workflow_error(self, message: str) -> None:
        """A refusal from the workflow: beside the reason field when it is about the reason."""
        field = "reason" if "reason" in self.fields and "reason" in message.lower() else None
        self.add_error(field, message)


# The GOV.UK date input: day, month and year as three text boxes in one fieldset.
# https://design-system.service.gov.uk/components/date-input/

DATE_PARTS = ("day", "month", "year")
# GOV.UK lets people type a month as a word ("mar", "March") as well as a number.
_MONTHS = {name.lower(): n for n in range(1, 13) for name in (calendar.month_name[n], calendar.month_abbr[n])}


class GovUKDateInput(forms.MultiWidget):
    """Three text inputs named ``<name>-day``, ``<name>-month`` and ``<name>-year``, as GOV.UK names them.

    A single ISO value under the plain name (``?since=2026-03-31``, as links and older bookmarks send)
    is read too, so a link can still carry a date.
    """

    template_name = "tracker/widgets/govuk_date_input.html"
    use_fieldset = True
    # Set by GovUKDateBoundField for one render: which of the three boxes to mark as in error.
    ERROR_PARTS_ATTR = "data-tracker-error-parts"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__({part: forms.TextInput for part in DATE_PARTS}, attrs)
        self.widgets_names = [f"-{part}" for part in DATE_PARTS]

    def decompress(self, value: dt.date | None) -> list[str]:
        if isinstance(value, dt.date):
            return [str(value.day), str(value.month), str(value.year)]
        return ["", "", ""]

    def value_from_datadict(self, data, files, name: str) -> list[str]:
        parts = super().value_from_datadict(data, files, name)
        if not any(parts) and data.get(name):
            try:
                return self.decompress(dt.date.fromisoformat(str(data.get(name))))
            except ValueError:
                return ["", "", str(data.get(name))]  # shown back in the year box, and refused
        return parts

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return name not in data and super().value_omitted_from_data(data, files, name)

    def get_context(self, name: str, value, attrs: dict | None) -> dict:
        attrs = dict(attrs or {})
        in_error = set(filter(None, (attrs.pop(self.ERROR_PARTS_ATTR, "") or "").split()))
        attrs.pop("aria-invalid", None)  # only the boxes in error are invalid, not all three
        context = super().get_context(name, value, attrs)
        base_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        context["widget"]["attrs"]["id"] = base_id
        for part, sub in zip(DATE_PARTS, context["widget"]["subwidgets"], strict=True):
            width = "govuk-input--width-4" if part == "year" else "govuk-input--width-2"
            css = f"govuk-input govuk-date-input__input {width}"
            sub["attrs"] = {"id": f"{base_id}-{part}", "inputmode": "numeric"}
            if part in in_error:
                sub["attrs"]["aria-invalid"] = "true"
                css += " govuk-input--error"
            sub["attrs"]["class"] = css
            sub["part_label"] = part.capitalize()
        return context


class GovUKDateBoundField(BoundField):
    govuk_date = True  # field.html renders it as the date input pattern

    @property
    def parts_in_error(self) -> list[str]:
        """The boxes an error is about; an error that does not say (the form's own) marks all three."""
        marked: set[str] = set()
        for error in self.errors.as_data():
            marked |= set((error.params or {}).get("parts", DATE_PARTS))
        return [part for part in DATE_PARTS if part in marked]

    @property
    def first_error_id(self) -> str:
        """Where the error summary links to: the first box in error (GOV.UK)."""
        parts = self.parts_in_error or ["day"]
        return f"{self.auto_id}-{parts[0]}"

    def as_widget(self, widget=None, attrs=None, only_initial=False) -> str:
        attrs = dict(attrs or {})
        if self.errors:
            attrs[GovUKDateInput.ERROR_PARTS_ATTR] = " ".join(self.parts_in_error)
        return super().as_widget(widget, attrs, only_initial)


class GovUKDateField(forms.MultiValueField):
    """A date typed as day, month and year, refused in GOV.UK words when it is not a real date.

    ``error_name`` starts each message ("Target date must be a real date"). An empty date is ``None``
    when the field is optional; the form decides what an empty date means, never the field.
    """

    widget = GovUKDateInput
    bound_field_class = GovUKDateBoundField
    default_error_messages = {"required": "Enter {name_lower}"}

    def __init__(
        self,
        *,
        error_name: str,
        earliest: dt.date = workflow.EARLIEST_DATE,
        latest: dt.date = workflow.LATEST_DATE,
        **kwargs,
    ) -> None:
        kwargs.setdefault("help_text", "For example, 31 3 2027")
        fields = [forms.CharField(required=False) for _ in DATE_PARTS]
        super().__init__(fields, require_all_fields=False, **kwargs)
        self.error_name, self.earliest, self.latest = error_name, earliest, latest

    def compress(self, data_list):  # clean() below does the work; required by MultiValueField
        return data_list

    def _error(self, message: str, parts: tuple[str, ...] = DATE_PARTS, code: str = "invalid") -> ValidationError:
        return ValidationError(message, code=code, params={"parts": parts})

    def clean(self, value) -> dt.date | None:
        values = list(value) if isinstance(value, list | tuple) else self.widget.decompress(value)
        day, month, year = ((str(v) if v is not None else "").strip() for v in [*values, "", "", ""][:3])
        given = dict(zip(DATE_PARTS, (day, month, year), strict=True))
        missing = tuple(part for part in DATE_PARTS if not given[part])
        if len(missing) == 3:
            if self.required:
                raise ValidationError(
                    self.error_messages["required"].format(name_lower=self.error_name.lower()),
                    code="required",
                    params={"parts": DATE_PARTS},
                )
            return None
        if missing:
            words = " and ".join(missing) if len(missing) == 2 else missing[0]
            raise self._error(f"{self.error_name} must include a {words}", missing)
        month = str(_MONTHS.get(month.lower(), month))
        wrong = tuple(part for part, text in (("day", day), ("month", month), ("year", year)) if not text.isdigit())
        if wrong:
            raise self._error(f"{self.error_name} must be a real date", wrong)
        if len(year) != 4:
            raise self._error(f"{self.error_name} year must include 4 numbers", ("year",))
        try:
            date = dt.date(int(year), int(month), int(day))
        except ValueError:
            parts = ("month",) if not 1 <= int(month) <= 12 else ("day",)
            raise self._error(f"{self.error_name} must be a real date", parts) from None
        if not self.earliest <= date <= self.latest:
            raise self._error(
                f"{self.error_name} must be between {self.earliest:%-d %B %Y} and {self.latest:%-d %B %Y}",
                code="out_of_range",
            )
        self.validate(date)
        self.run_validators(date)
        return date

    def validate(self, value) -> None:  # the parts are checked in clean(); MultiValueField's check does not apply
        pass

    def has_changed(self, initial, data) -> bool:
        try:
            return self.clean(data) != initial
        except ValidationError:
            return True


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
        moved_to = workflow.next_review_after_completion(rec)
        self.fields["review_completed"].help_text = (
            f"The next review will then be due on {moved_to:%-d %B %Y} "
            f"(now due {rec.next_review_due:%-d %B %Y}; reviewed every {rec.review_interval_days} days)."
        )
        self.fields["rag"].initial = ""
        if not can_submit:
            del self.fields["submit_for_assurance"]


class EvidenceForm(VersionedForm):
    # The page shows each kind's own field under its radio (includes/evidence_fields.html): the error
    # summary lists the errors in the same order.
    field_order = ["kind", "file", "link", "note", "category", "description"]

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
        label="Web address of the evidence",
        assume_scheme="https",
        required=False,
        help_text="For a link: the full web address, starting https://",
        error_messages={"invalid": "Enter a web address in the correct format, like https://example.org/report"},
    )
    note = forms.CharField(
        label="Text of the note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For a note: the text itself.",
    )

    def __init__(self, *args, raw_upload_names: list[str] | None = None, category: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw_upload_names = raw_upload_names or []
        if category in Evidence.Category.values:
            self.fields["category"].initial = category
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

    def __init__(self, *args, refused: dict[str, str] | None = None, **kwargs) -> None:
        """``refused``: the decisions this person may not take now, with the reason (from the policy)."""
        super().__init__(*args, **kwargs)
        self.refused = refused or {}
        field = self.fields["decision"]
        # Offer only what may happen now; say why the rest may not, in the hint.
        field.widget.choices = [(value, label) for value, label in field.choices if value not in self.refused]
        if self.CLOSE in self.refused:
            field.help_text = f"You cannot close it yet. {self.refused[self.CLOSE]}"

    def clean_decision(self) -> str:
        decision = self.cleaned_data["decision"]
        if decision in self.refused:
            raise ValidationError(self.refused[decision])
        return decision


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
    owner = PersonField(
        label="New owner",
        queryset=permissions.eligible_owners(None),
        required=False,
        empty_label="No owner",
        help_text="Only active owners and governance leads of this organisation can own a recommendation.",
        error_messages={
            "invalid_choice": "Choose the new owner from the list: only active owners and governance leads of "
            "this organisation can own a recommendation"
        },
    )
    reason = forms.CharField(label="Reason (optional)", required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rec = self.recommendation
        self.fields["owner"].queryset = permissions.eligible_owners(rec.organisation_id)
        self.fields["owner"].initial = rec.owner_id


class TargetDateForm(VersionedForm):
    """Set or move the target date, or remove it: removing is a choice of its own, never an empty date."""

    CHANGE, REMOVE = "change", "remove"

    choice = forms.ChoiceField(
        label="What do you want to do?",
        choices=[(CHANGE, "Change the target date"), (REMOVE, "Remove the target date")],
        widget=forms.RadioSelect,
        error_messages={"required": "Select whether to change or remove the target date"},
    )
    target_date = GovUKDateField(label="New target date", error_name="Target date", required=False)
    reason = forms.CharField(
        label="Reason for the change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when moving or removing an agreed target date.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target_date"].initial = self.recommendation.target_date
        if self.recommendation.target_date is None:
            # Nothing to remove: the page only sets a first target date.
            del self.fields["choice"]
            self.fields["target_date"].label = "Target date"
            self.fields["reason"].help_text = ""

    @property
    def removing(self) -> bool:
        return self.cleaned_data.get("choice") == self.REMOVE

    def clean(self) -> dict:
        data = super().clean()
        if "choice" in self.fields and not data.get("choice"):
            return data  # the radios' own error says what to do
        if self.removing:
            # What was typed in the date boxes does not matter when removing.
            self.errors.pop("target_date", None)
            data["target_date"] = None  # the workflow asks for the reason
        elif "target_date" not in self.errors and data.get("target_date") is None:
            message = (
                "Enter the target date, or choose to remove it" if "choice" in self.fields else "Enter the target date"
            )
            self.add_error("target_date", ValidationError(message, code="required", params={"parts": DATE_PARTS}))
        return data


# What red, amber and green mean here: shown on the RAG page, the bulk form and the list's key.
RAG_MEANINGS = {
    "red": "Off track: the target date will be missed, or the work has stopped, and the owner cannot put it "
    "right without help. Escalate it.",
    "amber": "At risk: behind plan or facing a problem the owner expects to solve; the target date can still be met.",
    "green": "On track: the work is going as planned and the target date will be met.",
}
RATINGS = [(value, label) for value, label in Recommendation.Rag.choices if value]


class SetRagForm(VersionedForm):
    rag = forms.ChoiceField(
        label="RAG rating",
        choices=RATINGS,
        widget=forms.RadioSelect,
        error_messages={"required": "Select red, amber or green"},
    )
    reason = forms.CharField(
        label="Why is this the rating now?",
        max_length=SHORT_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Give a reason for the RAG rating"},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rag"].initial = self.recommendation.rag or None


class BulkForm(StaffForm):
    """Several recommendations of the list at once: each change that is filled in, to every row chosen.

    The rows come as ``row`` values ``<id>:<version>`` (every row of the page, so that a change made
    underneath is refused per row) and ``selected`` ids (the ticked ones), or ``all_on_page``.
    """

    MAX_ROWS = 200

    all_on_page = forms.BooleanField(label="Every recommendation on this page", required=False)
    owner = PersonField(
        label="Owner",
        queryset=permissions.eligible_owners(None),
        required=False,
        empty_label="No change",
        help_text="Only active owners and governance leads of your organisation.",
        error_messages={"invalid_choice": "Choose the owner from the list"},
    )
    target_date = GovUKDateField(label="Target date", error_name="Target date", required=False)
    rag = forms.ChoiceField(label="RAG rating", choices=RAG_CHOICES, required=False, widget=forms.RadioSelect)
    review_interval_days = forms.IntegerField(
        label="Review interval in days",
        required=False,
        min_value=1,
        max_value=MAX_REVIEW_INTERVAL_DAYS,
        help_text=f"From 1 to {MAX_REVIEW_INTERVAL_DAYS}; leave empty for no change.",
        error_messages={
            "invalid": "Enter the review interval as a whole number of days",
            "min_value": f"The review interval must be from 1 to {MAX_REVIEW_INTERVAL_DAYS} days",
            "max_value": f"The review interval must be from 1 to {MAX_REVIEW_INTERVAL_DAYS} days",
        },
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=SHORT_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One reason for every row. Needed for a target date or a RAG rating.",
    )

    def __init__(self, *args, organisation_id: int | None, offered: set[str], **kwargs) -> None:
        kwargs.setdefault("auto_id", "bulk_%s")  # the filters beside it have fields of the same names
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = permissions.eligible_owners(organisation_id)
        for name in ("owner", "target_date", "rag", "review_interval_days"):
            if name not in offered:
                del self.fields[name]
        self.rows: dict[int, int] = {}
        self.fields["rag"].help_text = "Red, amber and green are defined beside the list." if "rag" in offered else ""

    def _ids(self) -> tuple[dict[int, int], list[int]]:
        rows: dict[int, int] = {}
        for value in self.data.getlist("row"):
            pk, _, version = str(value).partition(":")
            if not (pk.isdigit() and version.isdigit() and len(pk) < 19 and len(version) < 10):
                raise ValidationError("The list was not sent as it was shown. Reload the page and try again.")
            rows[int(pk)] = int(version)
        selected = []
        for value in self.data.getlist("selected"):
            if not (str(value).isdigit() and int(value) in rows):
                raise ValidationError("The list was not sent as it was shown. Reload the page and try again.")
            selected.append(int(value))
        return rows, selected

    def clean(self) -> dict:
        data = super().clean()
        try:
            rows, selected = self._ids()
        except ValidationError as exc:
            self.add_error(None, exc)
            return data
        chosen = list(rows) if data.get("all_on_page") else selected
        if not chosen:
            self.add_error(None, "Select the recommendations to change, or choose every recommendation on this page")
        elif len(chosen) > self.MAX_ROWS:
            self.add_error(None, f"Change at most {self.MAX_ROWS} recommendations at once")
        self.rows = {pk: rows[pk] for pk in chosen}
        changes = [data.get(name) for name in ("owner", "target_date", "rag", "review_interval_days")]
        if not any(change not in (None, "") for change in changes) and not self.errors:
            self.add_error(
                None, "Choose at least one change: an owner, a target date, a RAG rating or a review interval"
            )
        needs_reason = data.get("target_date") or data.get("rag")
        if needs_reason and not (data.get("reason") or "").strip() and "reason" not in self.errors:
            self.add_error("reason", "Give one reason for the new target date or RAG rating")
        return data


class SaveFilterForm(StaffForm):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "save_%s")
        super().__init__(*args, **kwargs)

    name = forms.CharField(
        label="Name this filter",
        max_length=SavedFilter._meta.get_field("name").max_length,
        error_messages={"required": "Give the filter a name"},
    )


# Each ends in the id, so that the order is total and a cursor (tracker.keyset) names one place in it;
# all but reference and target date are read straight from an index (Recommendation.Meta.indexes; the owner's
# through User.Meta.indexes, people in name order, so the owner's id comes before the review date).
SORTS = {
    "due": ("next_review_due", "pk"),
    "-due": ("-next_review_due", "-pk"),
    "reference": ("finding__reference", "pk"),
    "title": ("title", "pk"),
    "status": ("status", "next_review_due", "pk"),
    "rag": ("rag", "next_review_due", "pk"),
    "target": ("target_date", "next_review_due", "pk"),
    "owner": ("owner__last_name", "owner__first_name", "owner_id", "next_review_due", "pk"),
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


class ListedChoices(forms.models.ModelChoiceIterator):
    """A choice field's few options (an organisation's inspections, the themes) read in one plain query.
    Django's own iterator reads them through a server-side cursor on PostgreSQL, three round trips each
    (DECLARE, FETCH, CLOSE), as if there could be too many to hold."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


def staff_filter(data, queryset, request, *, own_only: bool = False) -> RecommendationFilter:
    """The shared FilterSet, with widgets that read well as a GOV.UK form without JavaScript.

    ``own_only``: an owner's list holds only their own, so there is no owner to filter by.
    """
    filterset = RecommendationFilter(data, queryset=queryset, request=request)
    if own_only:
        for name in ("owner", "owner_name"):
            filterset.filters.pop(name)
    fields = filterset.form.fields
    for name in ("status", "rag"):
        fields[name].widget = forms.CheckboxSelectMultiple(choices=fields[name].choices)
    fields["overdue"].widget = forms.Select(choices=[("", "Any"), ("true", "Overdue only"), ("false", "Not overdue")])
    fields["overdue"].label = "Review overdue"
    for name in ("inspection", "theme"):
        fields[name].empty_label = "Any"
        fields[name].iterator = ListedChoices
        fields[name].widget.choices = fields[name].choices
    # Never a choice per person (an organisation may have thousands): people are found by name in
    # owner_name; this list keeps "No owner" and whoever a link (?owner=<id>) already chose.
    owner_choices = [("", "Any"), ("null", "No owner")]
    chosen = (data or {}).get("owner", "")
    if not own_only and chosen.isascii() and chosen.isdigit() and len(chosen) < 19:
        person = fields["owner"].queryset.filter(pk=chosen).first()
        if person is not None:
            owner_choices.append((str(person.pk), str(person)))
    if not own_only:
        fields["owner"].widget = forms.Select(choices=owner_choices)
        fields["owner_name"].help_text = "Part of a name, or a username or email address."
    fields["group"].widget = forms.Select(choices=[("", "Any"), *inbox.GROUP_CHOICES])
    for name in ("due_before", "due_after"):
        fields[name].widget = forms.DateInput(attrs={"type": "date"})
    fields["q"].help_text = "A reference such as CC1, or words from the title, summary or outcome measure."
    return filterset


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"


class InspectionDatesForm(StaffForm):
    """An inspection's action plan and revisit dates (a governance lead's). An empty date means none;
    ``shown`` carries the dates the page showed, so that a change made meanwhile is not overwritten."""

    action_plan_due = GovUKDateField(
        label="Force's action plan due",
        error_name="The action plan date",
        required=False,
        help_text="For example, 14 4 2025. Leave it blank if no date has been agreed.",
    )
    revisit_due = GovUKDateField(
        label="Inspectorate's revisit",
        error_name="The revisit date",
        required=False,
        help_text="For example, 1 10 2025. Leave it blank if no revisit has been announced.",
    )
    reason = forms.CharField(
        label="Reason for the change",
        required=False,
        max_length=workflow.INSPECTION_REASON_LIMIT,
        widget=forms.TextInput(attrs={"class": "govuk-input"}),
        help_text=(
            f"Required when moving or removing a date already set; at most {workflow.INSPECTION_REASON_LIMIT} "
            "characters. It is kept in the inspection's history."
        ),
    )
    shown = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, inspection: Inspection, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("shown", self.shown_value(inspection))
        super().__init__(*args, **kwargs)
        self.fields["action_plan_due"].initial = inspection.action_plan_due
        self.fields["revisit_due"].initial = inspection.revisit_due

    @staticmethod
    def shown_value(inspection: Inspection) -> str:
        return "|".join(
            date.isoformat() if date else "" for date in (inspection.action_plan_due, inspection.revisit_due)
        )

    def clean_shown(self) -> tuple[dt.date | None, dt.date | None] | None:
        parts = (self.cleaned_data.get("shown") or "").split("|")
        if len(parts) != 2:
            return None
        try:
            return tuple(dt.date.fromisoformat(part) if part else None for part in parts)
        except ValueError:
            return None

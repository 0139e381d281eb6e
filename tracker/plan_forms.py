"""Forms for the action plan and outcome measures (issue 16). They parse input; the rules are the workflow's.

A form about a recommendation carries its ``version`` (``VersionedForm``); a form about one plan action
or data point carries that item's ``version`` instead, so an action moving on never makes the
recommendation's own forms stale.
"""

from __future__ import annotations

from django import forms

from tracker import permissions
from tracker.forms import GovUKDateField, PersonField, StaffForm, VersionedForm
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction, Recommendation


def _owner_field(label: str, help_text: str) -> PersonField:
    return PersonField(
        label=label,
        queryset=permissions.eligible_owners(None),
        help_text=help_text,
        error_messages={
            "required": f"Choose {label.lower()}",
            "invalid_choice": "Choose someone from the list: only active owners and governance leads of this "
            "organisation",
        },
    )


def _bounded(model: type, field: str, label: str, *, required: bool = True, rows: int = 3, **kw) -> forms.CharField:
    """A text box with the model field's own length limit."""
    limit = model._meta.get_field(field).max_length
    widget = forms.Textarea(attrs={"rows": rows}) if rows else forms.TextInput
    messages = {"required": f"Enter {label.lower()}", "max_length": f"{label} must be {limit:,} characters or fewer"}
    return forms.CharField(
        label=label, required=required, max_length=limit, widget=widget, error_messages=messages, **kw
    )


class ItemForm(StaffForm):
    """A form about one plan action or data point: the item's version travels with it."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, recommendation: Recommendation, item=None, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        if item is not None:
            kwargs["initial"].setdefault("version", item.version)
        self.recommendation, self.item = recommendation, item
        super().__init__(*args, **kwargs)
        if item is None:
            del self.fields["version"]


class PlanActionForm(ItemForm):
    """Add an action to the plan, or change one (its wording, owner and due date)."""

    description = _bounded(PlanAction, "description", "What will be done")
    owner = _owner_field("Who owns this action", "Any active owner or governance lead of the organisation.")
    due_date = GovUKDateField(label="Due date", error_name="Due date")
    reason = _bounded(
        PlanAction,
        "blocked_reason",
        "Reason for moving the due date",
        required=False,
        help_text="Required when moving an agreed due date.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = permissions.eligible_owners(self.recommendation.organisation_id)
        if self.item is None:
            del self.fields["reason"]
        else:
            for name in ("description", "owner", "due_date"):
                self.fields[name].initial = getattr(self.item, name)


class PlanActionStatusForm(ItemForm):
    status = forms.ChoiceField(
        label="Status",
        choices=PlanAction.Status.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the action's status"},
    )
    blocked_reason = _bounded(
        PlanAction, "blocked_reason", "Why is it blocked?", required=False, help_text="Required when blocked."
    )
    evidence_link = forms.URLField(
        label="Evidence that it is done (optional)",
        required=False,
        assume_scheme="https",
        max_length=PlanAction._meta.get_field("evidence_link").max_length,
        help_text="A link to where it can be seen, starting https://",
        error_messages={"invalid": "Enter a web address in the correct format, like https://example.org/report"},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("status", "blocked_reason", "evidence_link"):
            self.fields[name].initial = getattr(self.item, name)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("status") == PlanAction.Status.BLOCKED and not (data.get("blocked_reason") or "").strip():
            self.add_error("blocked_reason", "Say why the action is blocked")
        return data


class MeasureForm(VersionedForm):
    name = _bounded(OutcomeMeasure, "name", "Name", rows=0)
    definition = _bounded(
        OutcomeMeasure, "definition", "Definition", help_text="How it is counted: what is included, and from where."
    )
    unit = _bounded(OutcomeMeasure, "unit", "Unit", required=False, rows=0, help_text="For example %, days, cases.")
    direction = forms.ChoiceField(
        label="Which is better?",
        choices=OutcomeMeasure.Direction.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Say whether a higher or a lower value is better"},
    )
    frequency = forms.ChoiceField(
        label="How often is data due?",
        choices=OutcomeMeasure.Frequency.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Say whether data is due monthly or quarterly"},
    )
    baseline_value = forms.DecimalField(
        label="Baseline value", max_digits=14, decimal_places=4, error_messages={"required": "Enter the baseline"}
    )
    baseline_period = GovUKDateField(
        label="Baseline period", error_name="Baseline period", help_text="Any day in the month or quarter it describes."
    )
    target_value = forms.DecimalField(
        label="Target value", max_digits=14, decimal_places=4, error_messages={"required": "Enter the target"}
    )
    target_date = GovUKDateField(label="Target date", error_name="Target date")
    supplier = _owner_field("Who supplies the data", "An active owner or governance lead of the organisation.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["supplier"].queryset = permissions.eligible_owners(self.recommendation.organisation_id)


class DataPointForm(ItemForm):
    """Enter a period's value (no item) or correct one (the data point, with a reason)."""

    period = GovUKDateField(label="Period", error_name="Period", help_text="Any day in the month or quarter.")
    value = forms.DecimalField(
        label="Value", max_digits=14, decimal_places=4, error_messages={"required": "Enter the value"}
    )
    note = _bounded(MeasureDataPoint, "note", "Note (optional)", required=False)
    reason = _bounded(MeasureDataPoint, "correction_reason", "Reason for the correction")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.item is None:
            del self.fields["reason"]
        else:
            del self.fields["period"]
            self.fields["value"].initial = self.item.value
            self.fields["note"].initial = self.item.note


class OutcomeGatedForm(VersionedForm):
    gated = forms.TypedChoiceField(
        label="Does this recommendation close only on its outcomes?",
        choices=[("yes", "Yes: it closes only when its measures are at target"), ("no", "No")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        error_messages={"required": "Choose yes or no"},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when it no longer closes on outcomes.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["gated"].initial = "yes" if self.recommendation.outcome_gated else "no"


class OverrideForm(VersionedForm):
    reason = forms.CharField(
        label="Why may it close without its measures at target?",
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Give a reason for the override"},
        help_text="The board pack shows this reason.",
    )

"""The domain: organisations, inspections, findings and the recommendations that track them.

State changes to recommendations go through ``tracker.workflow``; nothing here changes status.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from tracker.predicates import matches
from tracker.storage import EvidenceStorage, ExportStorage, ImportStorage

# One bound for every interface (admin, pages, API, imports): a recommendation is reviewed at least
# once a year, and the date arithmetic of reminders never overflows.
MAX_REVIEW_INTERVAL_DAYS = 366

# Free text is bounded everywhere so that one request cannot store (or make every page render) megabytes.
# The forms, the admin, the API and tracker.workflow read each limit from its field's max_length.
LONG_TEXT = 10_000  # narratives and notes
MEDIUM_TEXT = 5_000  # summaries, quotes, outcome measures
SHORT_TEXT = 2_000  # reasons and descriptions


def bounded_text(limit: int, **kwargs) -> models.TextField:
    """A TextField with a length limit that model validation (the admin, model forms) enforces too."""
    return models.TextField(max_length=limit, validators=[MaxLengthValidator(limit)], **kwargs)


def text_length_check(prefix: str, field: str, limit: int) -> models.CheckConstraint:
    """The database's own copy of a text limit: a row written around the models is refused too."""
    return models.CheckConstraint(condition=LessThanOrEqual(Length(field), limit), name=f"{prefix}_{field}_length")


class OrganisationManager(models.Manager):
    def get_by_natural_key(self, slug: str) -> Organisation:
        return self.get(slug=slug)


class OrganisationKind(models.TextChoices):
    POLICE_FORCE = "police_force", "Police force"
    LOCAL_AUTHORITY = "local_authority", "Local authority"
    HEALTH = "health", "Health body"
    OTHER = "other", "Other"


class Organisation(models.Model):
    Kind = OrganisationKind

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.OTHER)
    history = HistoricalRecords()

    objects = OrganisationManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[c.value for c in OrganisationKind]), name="organisation_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.slug,)


class User(AbstractUser):
    """A person who signs in. Belongs to one organisation; sees only its data."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    job_title = models.CharField(max_length=200, blank=True)
    escalation_contact = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="escalates_for",
        help_text="Who hears about this person's reviews once they are badly overdue.",
    )
    # When they last opened home: a viewer's home says what changed since (tracker.inbox).
    home_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=["password", "last_login", "home_seen_at"])

    class Meta:
        ordering = ["last_name", "first_name", "username"]
        # The list sorted by owner walks people in name order and each one's recommendations from
        # rec_org_owner_due_idx, instead of sorting every recommendation (tracker.keyset).
        indexes = [models.Index(fields=["last_name", "first_name", "id"], name="user_name_idx")]

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class Theme(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Grade(models.TextChoices):
    OUTSTANDING = "outstanding", "Outstanding"
    GOOD = "good", "Good"
    ADEQUATE = "adequate", "Adequate"
    REQUIRES_IMPROVEMENT = "requires_improvement", "Requires improvement"
    INADEQUATE = "inadequate", "Inadequate"


class Inspectorate(models.TextChoices):
    HMICFRS = "hmicfrs", "HMICFRS"
    OFSTED = "ofsted", "Ofsted"
    CQC = "cqc", "CQC"
    HMI_PROBATION = "hmi_probation", "HMI Probation"
    JOINT = "joint", "Joint inspection"


PCC_RESPONSE_DAYS = 56  # Police Act 1996 s.55


class Inspection(models.Model):
    Inspectorate = Inspectorate

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="inspections")
    slug = models.SlugField(max_length=100, help_text="Unique within the organisation.")
    inspectorate = models.CharField(max_length=32, choices=Inspectorate.choices)
    programme = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    published = models.DateField(null=True, blank=True, help_text="Exact publication date, when known.")
    published_text = models.CharField(
        max_length=100, blank=True, help_text="Publication date as the sources state it, e.g. 'January 2025'."
    )
    url = models.URLField(blank=True)
    joint_inspectorates = models.CharField(
        max_length=200, blank=True, help_text="For a joint inspection, the inspectorates that carried it out."
    )
    tracked = models.BooleanField(
        default=True,
        help_text="Tracked inspections get a recommendation per finding; untracked ones are history.",
    )
    # The clocks that follow publication and that a governance lead sets (tracker.deadlines reads them).
    action_plan_due = models.DateField(
        "action plan date",
        null=True,
        blank=True,
        help_text="When the force's action plan in response to the report is due.",
    )
    revisit_due = models.DateField(
        "revisit date", null=True, blank=True, help_text="When the inspectorate is due to revisit."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-published", "title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(inspectorate__in=[c.value for c in Inspectorate]),
                name="inspection_inspectorate_valid",
            ),
            # Per organisation, not global: one force's slugs must not tell another what it has.
            models.UniqueConstraint(fields=["organisation", "slug"], name="inspection_slug_unique_per_organisation"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("tracker:inspection", args=[self.pk])

    def clean(self) -> None:
        errors = {}
        for name in ("action_plan_due", "revisit_due"):
            value = getattr(self, name)
            if value and self.published and value < self.published:
                label = self._meta.get_field(name).verbose_name
                errors[name] = f"The {label} cannot be before the report was published ({self.published:%-d %B %Y})."
        if errors:
            raise ValidationError(errors)

    @property
    def pcc_response_due(self) -> dt.date | None:
        """Police Act 1996 s.55: the police and crime commissioner publishes a response to an HMICFRS
        report on their force within 56 days of its publication."""
        if self.published is None or self.inspectorate != Inspectorate.HMICFRS:
            return None
        if self.organisation.kind != OrganisationKind.POLICE_FORCE:
            return None
        return self.published + dt.timedelta(days=PCC_RESPONSE_DAYS)


class Judgement(models.Model):
    """A graded judgement: one area of the inspection and the grade it was given."""

    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="judgements")
    area = models.CharField(max_length=300)
    grade = models.CharField(max_length=32, choices=Grade.choices)
    source = models.ForeignKey(
        "Source",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="judgements",
        help_text="The publication that states the grade (or, when inferred, the one the inference starts from).",
    )
    inferred_because = models.CharField(
        max_length=500,
        blank=True,
        help_text="Empty when a source states this grade; otherwise why the grade is inferred, not stated.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["inspection", "area"]
        constraints = [
            models.UniqueConstraint(fields=["inspection", "area"], name="judgement_area_unique"),
            models.CheckConstraint(condition=Q(grade__in=[c.value for c in Grade]), name="judgement_grade_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.area}: {self.get_grade_display()}"


class FindingKind(models.TextChoices):
    GRADED_JUDGEMENT = "graded_judgement", "Graded judgement"
    CAUSE_OF_CONCERN = "cause_of_concern", "Cause of concern"
    RECOMMENDATION = "recommendation", "Recommendation"
    AREA_FOR_IMPROVEMENT = "area_for_improvement", "Area for improvement"
    CONCERN = "concern", "Concern or observation"
    # What the inspectorate found working well: shown as what to sustain, never tracked as a recommendation.
    STRENGTH = "strength", "Strength"


# Kinds that become tracked recommendations (a strength is shown, not tracked).
TRACKED_KINDS = tuple(kind for kind in FindingKind if kind != FindingKind.STRENGTH)


class Finding(models.Model):
    Kind = FindingKind

    inspection = models.ForeignKey(Inspection, on_delete=models.PROTECT, related_name="findings")
    reference = models.CharField(max_length=20)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    summary = bounded_text(MEDIUM_TEXT)
    themes = models.ManyToManyField(Theme, blank=True, related_name="findings")
    history = HistoricalRecords(m2m_fields=[themes])

    class Meta:
        ordering = ["inspection", "reference"]
        constraints = [
            models.UniqueConstraint(fields=["inspection", "reference"], name="finding_reference_unique"),
            models.CheckConstraint(condition=Q(kind__in=[c.value for c in FindingKind]), name="finding_kind_valid"),
            text_length_check("finding", "summary", MEDIUM_TEXT),
        ]
        # A recommendation's inspection from its finding's id without reading the finding's row (its
        # texts): the dashboard's overdue and missed counts by inspection look it up thousands of times.
        indexes = [
            models.Index(fields=["id", "inspection"], name="finding_id_inspection_idx"),
            # One kind of an inspection's findings in reference order without reading the others: the
            # dashboard's few strengths per inspection, the inspection page's groups a page at a time.
            # Kind first, so that it never competes with the inspection's own index for other queries.
            models.Index(fields=["kind", "inspection", "reference"], name="finding_kind_inspection_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_tracked_kind(self) -> bool:
        return self.kind != FindingKind.STRENGTH

    # The first quotation (the inspectorate's words where there are any): what lists and exports show.
    # Reads prefetched ``quotations__source`` when the caller prefetched them.

    @property
    def primary_quotation(self) -> Quotation | None:
        quotations = sorted(self.quotations.all(), key=lambda q: (q.position, q.pk or 0))
        return quotations[0] if quotations else None

    @property
    def quote(self) -> str:
        first = self.primary_quotation
        return first.text if first else ""

    @property
    def quote_label(self) -> str:
        first = self.primary_quotation
        return first.label if first else ""

    @property
    def source_title(self) -> str:
        first = self.primary_quotation
        return first.source.title if first else ""

    @property
    def source_location(self) -> str:
        first = self.primary_quotation
        return first.location if first else ""

    @property
    def provenance(self) -> str:
        first = self.primary_quotation
        return first.provenance if first else ""


class SourceKind(models.TextChoices):
    INSPECTORATE_REPORT = "inspectorate_report", "Inspectorate report"
    INSPECTORATE_NEWS_RELEASE = "inspectorate_news_release", "Inspectorate news release"
    NEWSPAPER_REPORT = "newspaper_report", "Newspaper report"
    THIRD_PARTY_SUMMARY = "third_party_summary", "Third-party summary"


INSPECTORATE_SOURCE_KINDS = (SourceKind.INSPECTORATE_REPORT, SourceKind.INSPECTORATE_NEWS_RELEASE)
INSPECTORATE_WORDS = "The inspectorate's words"


class Source(models.Model):
    """A publication that findings quote: the inspectorate's report or news release, a newspaper's
    report of it, or a third party's summary. Belongs to one inspection (and so to its organisation)."""

    Kind = SourceKind

    inspection = models.ForeignKey(Inspection, on_delete=models.PROTECT, related_name="sources")
    key = models.SlugField(max_length=100, help_text="Names the source within its inspection (seed files use it).")
    title = models.CharField(max_length=300)
    publisher = models.CharField(max_length=200, blank=True, help_text="Who published it, e.g. The Northern Echo.")
    kind = models.CharField(max_length=32, choices=SourceKind.choices)
    published = models.DateField(null=True, blank=True)
    published_text = models.CharField(max_length=100, blank=True, help_text="The date as known, e.g. 'January 2025'.")
    url = models.URLField("address", max_length=500, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["inspection", "key"]
        constraints = [
            models.UniqueConstraint(fields=["inspection", "key"], name="source_key_unique_per_inspection"),
            models.CheckConstraint(condition=Q(kind__in=[c.value for c in SourceKind]), name="source_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_inspectorate(self) -> bool:
        return self.kind in INSPECTORATE_SOURCE_KINDS

    @property
    def label(self) -> str:
        """How words quoted from this source are introduced: only the inspectorate's are theirs."""
        if self.is_inspectorate:
            return INSPECTORATE_WORDS
        if self.kind == SourceKind.NEWSPAPER_REPORT:
            return f"As reported by {self.publisher}" if self.publisher else "As reported in the news"
        return "Summary"

    @property
    def date_display(self) -> str:
        return f"{self.published:%-d %B %Y}" if self.published else self.published_text


class Quotation(models.Model):
    """Words of one source, and where in it, supporting a finding. A finding's first quotation is the
    inspectorate's own where it has any; others (a newspaper's report of them) follow as second sources.
    Empty words mean the finding is summarised from the source without quoting it."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="quotations")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="quotations")
    position = models.PositiveSmallIntegerField(default=1)
    text = bounded_text(MEDIUM_TEXT, blank=True, help_text="Exactly the source's words, briefly.")
    location = models.CharField(max_length=100, blank=True, help_text="Where in the source.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["finding", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["finding", "position"], name="quotation_position_unique"),
            text_length_check("quotation", "text", MEDIUM_TEXT),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.text[:60]}"

    @property
    def label(self) -> str:
        if not self.text:
            return "Summarised from the inspectorate" if self.source.is_inspectorate else "Summarised from"
        return self.source.label

    @property
    def provenance(self) -> str:
        """The publication and the place, as users read it: never an internal file path."""
        parts = [self.source.title]
        if self.source.publisher and self.source.publisher not in self.source.title:
            parts.append(self.source.publisher)
        if self.source.date_display:
            parts.append(self.source.date_display)
        if self.location:
            parts.append(self.location)
        return ", ".join(parts)


class RecommendationQuerySet(models.QuerySet):
    def for_organisation(self, organisation_id: int | None) -> RecommendationQuerySet:
        return self.filter(organisation_id=organisation_id)

    # Each filter below is a rule defined once on Recommendation (``open_q`` ...), which the
    # model's methods (``is_overdue`` ...) test one instance against: the two cannot disagree.

    def open(self) -> RecommendationQuerySet:
        return self.filter(Recommendation.open_q())

    def overdue(self, today: dt.date) -> RecommendationQuerySet:
        return self.filter(Recommendation.overdue_q(today))

    def due_soon(self, today: dt.date, lead_days: int | None = None) -> RecommendationQuerySet:
        return self.filter(Recommendation.due_soon_q(today, lead_days))

    def target_missed(self, today: dt.date) -> RecommendationQuerySet:
        return self.filter(Recommendation.target_missed_q(today))

    def due_for_review(self, today: dt.date, lead_days: int = 0) -> RecommendationQuerySet:
        """Overdue, or due within ``lead_days`` from today."""
        return self.filter(Recommendation.overdue_q(today) | Recommendation.due_soon_q(today, lead_days))

    def with_related(self) -> RecommendationQuerySet:
        return self.select_related("finding__inspection__organisation", "owner")


class Status(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    AWAITING_ASSURANCE = "awaiting_assurance", "Awaiting assurance"
    CLOSED = "closed", "Closed"
    SUPERSEDED = "superseded", "Superseded"


# The recommendation's columns that database triggers keep (tracker.kept): never written by the application,
# not history (each follows from rows that are).
KEPT_FIELDS = (
    "submitted_at",
    "stuck_from",
    "evidence_live",
    "evidence_live_outcome",
    "evidence_pending",
    "evidence_accepted",
    "evidence_accepted_outcome",
    "opened_at",
    "outcome_gate_overridden",
    "inspection",
)
OPEN_STATUSES = (Status.NOT_STARTED, Status.IN_PROGRESS, Status.AWAITING_ASSURANCE)


class Rag(models.TextChoices):
    NOT_RATED = "", "Not rated"
    RED = "red", "Red"
    AMBER = "amber", "Amber"
    GREEN = "green", "Green"


class Recommendation(models.Model):
    """The tracked unit: one per finding, with an owner, a status and evidence."""

    Status = Status

    Rag = Rag

    OPEN_STATUSES = OPEN_STATUSES

    class ReviewState(models.TextChoices):
        CLOSED = Status.CLOSED.value, Status.CLOSED.label
        SUPERSEDED = Status.SUPERSEDED.value, Status.SUPERSEDED.label
        OVERDUE = "overdue", "Overdue"
        DUE_SOON = "due_soon", "Due soon"
        LATER = "later", "Later"

    finding = models.OneToOneField(Finding, on_delete=models.PROTECT, related_name="recommendation")
    # Always the finding's inspection's organisation (set once by workflow.create_recommendation): a copy,
    # so that every list filters and sorts on this table's own indexes instead of joining two tables.
    # The composite indexes below lead with it, so it needs no index of its own.
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="recommendations", editable=False, db_index=False
    )
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="owned_recommendations",
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.NOT_STARTED)
    rag = models.CharField("RAG", max_length=8, choices=Rag.choices, blank=True, default=Rag.NOT_RATED)
    target_date = models.DateField(null=True, blank=True)
    review_interval_days = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REVIEW_INTERVAL_DAYS)]
    )
    next_review_due = models.DateField()
    outcome_measure = bounded_text(MEDIUM_TEXT, blank=True, help_text="How we will know it worked for children.")
    # Closure follows outcomes (tracker.outcomes): a lead marks it; a cause of concern is gated whatever this says.
    outcome_gated = models.BooleanField(
        default=False,
        help_text="Closes only when its outcome measures have met their targets (causes of concern always do).",
    )
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    # Bumped by every write through tracker.workflow; forms and the API send it back so a change
    # made underneath them is refused instead of silently overwritten.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Kept by database triggers from its events and progress updates (tracker.kept), never by the application,
    # and not history: when it was last submitted for assurance, and when it counts as stuck.
    submitted_at = models.DateTimeField(null=True, editable=False)
    stuck_from = models.DateTimeField(null=True, editable=False)
    # Kept the same way, for a list's decisions (policy.with_facts): its evidence counted as policy counts it,
    # when it was last opened, and whether an outcome override was recorded since. Null only before the
    # triggers first ran (never after a write).
    evidence_live = models.IntegerField(null=True, editable=False)
    evidence_live_outcome = models.IntegerField(null=True, editable=False)
    evidence_pending = models.IntegerField(null=True, editable=False)
    evidence_accepted = models.IntegerField(null=True, editable=False)
    evidence_accepted_outcome = models.IntegerField(null=True, editable=False)
    opened_at = models.DateTimeField(null=True, editable=False)
    outcome_gate_overridden = models.BooleanField(null=True, editable=False)
    # And a copy of its finding's inspection, as of the organisation, for the dashboard of one inspection. No
    # constraint of its own (the finding's holds): so that SQLite can add and drop the column in place.
    inspection = models.ForeignKey(
        Inspection,
        on_delete=models.DO_NOTHING,
        null=True,
        editable=False,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    history = HistoricalRecords(excluded_fields=list(KEPT_FIELDS))

    objects = RecommendationQuerySet.as_manager()

    class Meta:
        ordering = ["next_review_due", "finding__reference"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[c.value for c in Status]), name="recommendation_status_valid"
            ),
            models.CheckConstraint(condition=Q(rag__in=[c.value for c in Rag]), name="recommendation_rag_valid"),
            models.CheckConstraint(
                condition=Q(review_interval_days__gte=1, review_interval_days__lte=MAX_REVIEW_INTERVAL_DAYS),
                name="recommendation_interval_in_range",
            ),
            text_length_check("recommendation", "outcome_measure", MEDIUM_TEXT),
            models.CheckConstraint(
                condition=(Q(status="superseded") & Q(superseded_by__isnull=False))
                | (~Q(status="superseded") & Q(superseded_by__isnull=True)),
                name="recommendation_superseded_has_replacement",
            ),
            models.CheckConstraint(
                condition=~Q(superseded_by=models.F("pk")), name="recommendation_not_superseded_by_itself"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_review_due"]),
            # One per list order (tracker.forms.SORTS, the API's orderings), each ending in the id that
            # breaks ties, so a page is read from the index in order and a cursor seeks straight to it.
            models.Index(fields=["organisation", "next_review_due", "id"], name="rec_org_due_idx"),
            # The status last: home's count of items with no owner reads the index alone.
            models.Index(
                fields=["organisation", "owner", "next_review_due", "id", "status"], name="rec_org_owner_due_idx"
            ),
            # The inspection last: the dashboard's overdue count by inspection reads the index alone (covering).
            models.Index(
                fields=["organisation", "status", "next_review_due", "id", "inspection"], name="rec_org_status_due_idx"
            ),
            # The status last: the list filtered by RAG and status reads its page's ids, and its overdue count,
            # from the index alone.
            models.Index(fields=["organisation", "rag", "next_review_due", "id", "status"], name="rec_org_rag_due_idx"),
            models.Index(fields=["organisation", "title", "id"], name="rec_org_title_idx"),
            # The dashboard's lists: targets missed (by target date) and awaiting assurance (longest first).
            # Status and inspection last: its count of targets missed by inspection reads the index alone.
            models.Index(
                fields=["organisation", "target_date", "id", "status", "inspection"], name="rec_org_target_idx"
            ),
            models.Index(fields=["organisation", "status", "updated_at", "id"], name="rec_org_status_updated_idx"),
            # The dashboard's weekly figures: what was created in the last weeks, not every row's date.
            models.Index(fields=["organisation", "created_at", "inspection"], name="rec_org_created_idx"),
            # The dashboard of one inspection: its counts, its overdue list and each theme's most overdue, in
            # review order.
            models.Index(
                fields=["organisation", "inspection", "next_review_due", "id", "status"], name="rec_org_insp_due_idx"
            ),
            # Home's "stuck" (counted from the index alone), "awaiting your assurance" (longest first) and "no
            # target date" (by review date, as the list's sort by target date; the status last, so that counting
            # them reads the index alone: SQLite's statistics cannot tell that a quarter have no target date).
            # Open items only: PostgreSQL read every row rather than three status ranges of a full index.
            models.Index(
                fields=["organisation", "stuck_from", "id", "status"],
                condition=Q(status__in=OPEN_STATUSES),
                name="rec_org_open_stuck_idx",
            ),
            models.Index(fields=["organisation", "status", "submitted_at", "id"], name="rec_org_status_submitted_idx"),
            models.Index(
                fields=["organisation", "target_date", "next_review_due", "id", "status"], name="rec_org_target_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("tracker:recommendation", args=[self.pk])

    @property
    def reference(self) -> str:
        return self.finding.reference

    # Where a recommendation stands, each rule written once as a Q: RecommendationQuerySet filters by
    # it and the methods below test one instance against it (tracker.predicates.matches).

    @classmethod
    def open_q(cls) -> Q:
        return Q(status__in=cls.OPEN_STATUSES)

    @classmethod
    def overdue_q(cls, today: dt.date) -> Q:
        """Open, and its next review date has passed."""
        return cls.open_q() & Q(next_review_due__lt=today)

    @classmethod
    def due_soon_q(cls, today: dt.date, lead_days: int | None = None) -> Q:
        """Open, and its next review is due today or within ``lead_days`` (REMINDER_LEAD_DAYS)."""
        lead_days = settings.REMINDER_LEAD_DAYS if lead_days is None else lead_days
        return cls.open_q() & Q(next_review_due__gte=today, next_review_due__lte=today + dt.timedelta(days=lead_days))

    @classmethod
    def target_missed_q(cls, today: dt.date) -> Q:
        """Open, and its target date has passed (a target of today is not missed yet)."""
        return cls.open_q() & Q(target_date__lt=today)

    @property
    def is_open(self) -> bool:
        return matches(self, self.open_q())

    def is_overdue(self, today: dt.date | None = None) -> bool:
        return matches(self, self.overdue_q(today or timezone.localdate()))

    def is_due_soon(self, today: dt.date | None = None, lead_days: int | None = None) -> bool:
        return matches(self, self.due_soon_q(today or timezone.localdate(), lead_days))

    def target_missed(self, today: dt.date | None = None) -> bool:
        return matches(self, self.target_missed_q(today or timezone.localdate()))

    def review_state(self, today: dt.date | None = None) -> ReviewState:
        """Where its review stands, for display: closed or superseded, else overdue, due soon or later."""
        if not self.is_open:
            return self.ReviewState(self.status)
        today = today or timezone.localdate()
        if self.is_overdue(today):
            return self.ReviewState.OVERDUE
        if self.is_due_soon(today):
            return self.ReviewState.DUE_SOON
        return self.ReviewState.LATER

    def days_overdue(self, today: dt.date | None = None) -> int:
        return max(0, ((today or timezone.localdate()) - self.next_review_due).days)


class RecommendationEvent(models.Model):
    """The timeline: every workflow action with who, when, old and new value and the reason.

    Field-level history is also kept by django-simple-history; this table is the readable story.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        STARTED = "started", "Work started"
        UPDATE = "update", "Progress update"
        REVIEW_COMPLETED = "review_completed", "Review completed"
        SUBMITTED = "submitted", "Submitted for assurance"
        CLOSED = "closed", "Accepted and closed"
        REJECTED = "rejected", "Rejected at assurance"
        REOPENED = "reopened", "Reopened"
        SUPERSEDED = "superseded", "Superseded"
        OWNER_CHANGED = "owner_changed", "Owner changed"
        TARGET_DATE_CHANGED = "target_date_changed", "Target date changed"
        REVIEW_INTERVAL_CHANGED = "review_interval_changed", "Review interval changed"
        RAG_CHANGED = "rag_changed", "RAG changed"
        EVIDENCE_ADDED = "evidence_added", "Evidence added"
        EVIDENCE_ACCEPTED = "evidence_accepted", "Evidence accepted"
        EVIDENCE_REJECTED = "evidence_rejected", "Evidence rejected"
        # The action plan and outcome measures (issue 16).
        PLAN_ACTION_ADDED = "plan_action_added", "Action added to the plan"
        PLAN_ACTION_CHANGED = "plan_action_changed", "Plan action changed"
        PLAN_ACTION_STATUS = "plan_action_status", "Plan action status changed"
        PLAN_ACTION_DUE_DATE = "plan_action_due_date", "Plan action due date moved"
        MEASURE_ADDED = "measure_added", "Outcome measure added"
        MEASURE_DATA_ENTERED = "measure_data_entered", "Measure data entered"
        MEASURE_DATA_CORRECTED = "measure_data_corrected", "Measure data corrected"
        OUTCOME_GATE_CHANGED = "outcome_gate_changed", "Outcome gating changed"
        OUTCOME_GATE_OVERRIDDEN = "outcome_gate_overridden", "Outcome gate overridden"

    recommendation = models.ForeignKey(Recommendation, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    old_value = models.CharField(max_length=200, blank=True)
    new_value = models.CharField(max_length=200, blank=True)
    reason = bounded_text(SHORT_TEXT, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["recommendation", "at"]),
            # The dashboard's weekly closures: events of a few actions before each week boundary.
            models.Index(fields=["action", "at", "recommendation"], name="event_action_at_idx"),
            # A viewer's home: what changed since their last visit, the newest first.
            models.Index(fields=["at", "recommendation"], name="event_at_rec_idx"),
        ]
        constraints = [text_length_check("event", "reason", SHORT_TEXT)]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor or 'system'} at {self.at:%Y-%m-%d %H:%M}"


class ProgressUpdate(models.Model):
    recommendation = models.ForeignKey(Recommendation, on_delete=models.PROTECT, related_name="updates")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    narrative = bounded_text(LONG_TEXT)
    rag = models.CharField("RAG", max_length=8, choices=Recommendation.Rag.choices, blank=True)
    review_completed = models.BooleanField(
        default=False, help_text="Completing a review moves the next review date on by the interval."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [text_length_check("update", "narrative", LONG_TEXT)]
        # Home's "stuck" reads the updates since a date: the few recent ones, not every item's latest.
        indexes = [models.Index(fields=["created_at", "recommendation"], name="update_created_rec_idx")]

    def __str__(self) -> str:
        return f"Update on {self.recommendation.reference} by {self.author} at {self.created_at:%Y-%m-%d}"


def evidence_upload_to(instance: Evidence, filename: str) -> str:
    # A generated name: the user's filename is kept only as metadata, never as a path.
    return f"{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class EvidenceKind(models.TextChoices):
    FILE = "file", "File"
    LINK = "link", "Link"
    NOTE = "note", "Note"


class EvidenceCategory(models.TextChoices):
    OUTPUT = "output", "Output (something delivered, e.g. training)"
    OUTCOME = "outcome", "Outcome (a result for children, e.g. audited response times)"


class Verdict(models.TextChoices):
    PENDING = "pending", "Pending review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Evidence(models.Model):
    Kind = EvidenceKind

    Category = EvidenceCategory

    Verdict = Verdict

    recommendation = models.ForeignKey(Recommendation, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    category = models.CharField(max_length=8, choices=Category.choices)
    description = bounded_text(SHORT_TEXT, help_text="What this evidence shows.")
    file = models.FileField(upload_to=evidence_upload_to, storage=EvidenceStorage, blank=True, max_length=200)
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    link = models.URLField(blank=True, max_length=500)
    note = bounded_text(LONG_TEXT, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, default=Verdict.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = bounded_text(SHORT_TEXT, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-added_at", "-pk"]
        verbose_name_plural = "evidence"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=[c.value for c in EvidenceKind]), name="evidence_kind_valid"),
            models.CheckConstraint(
                condition=Q(category__in=[c.value for c in EvidenceCategory]), name="evidence_category_valid"
            ),
            models.CheckConstraint(condition=Q(verdict__in=[c.value for c in Verdict]), name="evidence_verdict_valid"),
            models.CheckConstraint(
                condition=(Q(kind="file") & ~Q(file=""))
                | (Q(kind="link") & ~Q(link=""))
                | (Q(kind="note") & ~Q(note="")),
                name="evidence_has_content",
            ),
            models.CheckConstraint(
                condition=~Q(verdict="rejected") | ~Q(rejection_reason=""), name="evidence_rejection_has_reason"
            ),
            text_length_check("evidence", "description", SHORT_TEXT),
            text_length_check("evidence", "note", LONG_TEXT),
            text_length_check("evidence", "rejection_reason", SHORT_TEXT),
        ]
        # Home's "evidence awaiting a verdict" starts from the few pending pieces, not from every open item.
        indexes = [models.Index(fields=["recommendation"], condition=Q(verdict="pending"), name="evidence_pending_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} evidence on {self.recommendation.reference}: {self.description[:60]}"


class ReminderStage(models.TextChoices):
    DUE_SOON = "due_soon", "Due soon"
    OVERDUE = "overdue", "Overdue"
    ESCALATION = "escalation", "Escalation"
    UNOWNED = "unowned", "No owner"
    # Notifications of workflow steps (tracker.notifications): each row points at the event that caused it.
    ASSIGNED = "assigned", "Owner assigned to you"
    UNASSIGNED = "unassigned", "No longer yours"
    SUBMITTED = "submitted", "Awaiting assurance"
    EVIDENCE_ACCEPTED = "evidence_accepted", "Evidence accepted"
    EVIDENCE_REJECTED = "evidence_rejected", "Evidence rejected"
    CLOSED = "closed", "Closure accepted"
    RETURNED = "returned", "Closure rejected (returned)"
    REOPENED = "reopened", "Reopened"
    TARGET_MOVED = "target_moved", "Target date moved"
    # Dates that are not a recommendation's review (tracker.ledger_items): each row points at its item.
    ACTION_DUE_SOON = "action_due_soon", "Plan action due soon"
    ACTION_OVERDUE = "action_overdue", "Plan action overdue"
    MEASURE_DATA_DUE = "measure_data_due", "Measure data due"
    DEADLINE_APPROACHING = "deadline_approaching", "Inspection deadline approaching"
    DEADLINE_DUE = "deadline_due", "Inspection deadline due or passed"


# The review reminders the daily sweep plans.
REVIEW_STAGES = (ReminderStage.DUE_SOON, ReminderStage.OVERDUE, ReminderStage.ESCALATION, ReminderStage.UNOWNED)
# The other dates the daily sweep plans, each kind of row pointing at its own item.
ACTION_STAGES = (ReminderStage.ACTION_DUE_SOON, ReminderStage.ACTION_OVERDUE)
MEASURE_STAGES = (ReminderStage.MEASURE_DATA_DUE,)
DEADLINE_STAGES = (ReminderStage.DEADLINE_APPROACHING, ReminderStage.DEADLINE_DUE)
# Every other stage is a notification of a workflow step.
NOTIFICATION_STAGES = tuple(
    stage for stage in ReminderStage if stage not in (*REVIEW_STAGES, *ACTION_STAGES, *MEASURE_STAGES, *DEADLINE_STAGES)
)


class DeadlineKind(models.TextChoices):
    """An inspection's deadlines (tracker.deadlines), as the reminder ledger names them."""

    PCC_RESPONSE = "pcc_response", "Police and crime commissioner's published response"
    ACTION_PLAN = "action_plan", "Force's action plan"
    REVISIT = "revisit", "Inspectorate's revisit"


class ReminderState(models.TextChoices):
    PENDING = "pending", "Pending (waiting for its next attempt)"
    HELD = "held", "Held for the next daily digest"
    SENDING = "sending", "Sending (claimed by a worker)"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (refused or no address; needs a person)"
    DEAD = "dead", "Dead (gave up after repeated temporary failures)"
    CANCELLED = "cancelled", "Cancelled (no longer due)"


class Reminder(models.Model):
    """The reminder ledger. Each row has exactly one shape, which the CHECK constraint names by its stage:

    - a review reminder: one per (recommendation, recipient, stage, review due date, occurrence);
    - a notification of a workflow step: one per (event, recipient, stage), on its recommendation;
    - a plan action's date: one per (action, recipient, stage, due date, occurrence);
    - an outcome measure's data due: one per (measure, recipient, stage, due date), the due date naming the period;
    - an inspection's deadline: one per (inspection, deadline kind, recipient, stage, due date).

    The unique constraints are what make a reminder exactly-once; delivery claims rows with a lease.
    Temporary delivery failures go back to pending with a later ``next_attempt_at`` (the wait lives
    here, not in the broker); permanent ones are failed; too many attempts make a row dead.
    """

    Stage = ReminderStage

    State = ReminderState

    Deadline = DeadlineKind

    # Empty for a row about a plan action, a measure or an inspection deadline: it points at that instead.
    recommendation = models.ForeignKey(
        Recommendation, on_delete=models.CASCADE, null=True, blank=True, related_name="reminders"
    )
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reminders")
    stage = models.CharField(max_length=32, choices=Stage.choices)
    # A review reminder's review date; empty for every other shape.
    review_due = models.DateField(null=True, blank=True)
    event = models.ForeignKey(
        RecommendationEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    plan_action = models.ForeignKey(
        "PlanAction", on_delete=models.CASCADE, null=True, blank=True, related_name="reminders"
    )
    measure = models.ForeignKey(
        "OutcomeMeasure", on_delete=models.CASCADE, null=True, blank=True, related_name="reminders"
    )
    inspection = models.ForeignKey(
        Inspection, on_delete=models.CASCADE, null=True, blank=True, related_name="reminders"
    )
    deadline = models.CharField(max_length=16, choices=Deadline.choices, blank=True, default="")
    # The date a plan action, a measure's data or an inspection deadline is due; empty for the other shapes.
    due = models.DateField(null=True, blank=True)
    # Overdue reminders repeat weekly: the sequence number tells the repeats apart.
    occurrence = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = bounded_text(SHORT_TEXT, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recommendation", "recipient", "stage", "review_due", "occurrence"],
                name="reminder_once_per_stage_and_due_date",
            ),
            models.UniqueConstraint(fields=["event", "recipient", "stage"], name="reminder_once_per_event"),
            models.UniqueConstraint(
                fields=["plan_action", "recipient", "stage", "due", "occurrence"], name="reminder_once_per_action"
            ),
            models.UniqueConstraint(
                fields=["measure", "recipient", "stage", "due", "occurrence"], name="reminder_once_per_measure"
            ),
            models.UniqueConstraint(
                fields=["inspection", "deadline", "recipient", "stage", "due", "occurrence"],
                name="reminder_once_per_deadline",
            ),
            # Which shape a row has, by its stage: exactly the columns of that shape are set.
            models.CheckConstraint(
                condition=(
                    Q(
                        stage__in=[c.value for c in REVIEW_STAGES],
                        recommendation__isnull=False,
                        review_due__isnull=False,
                        event__isnull=True,
                        plan_action__isnull=True,
                        measure__isnull=True,
                        inspection__isnull=True,
                        deadline="",
                        due__isnull=True,
                    )
                    | Q(
                        stage__in=[c.value for c in NOTIFICATION_STAGES],
                        recommendation__isnull=False,
                        event__isnull=False,
                        review_due__isnull=True,
                        plan_action__isnull=True,
                        measure__isnull=True,
                        inspection__isnull=True,
                        deadline="",
                        due__isnull=True,
                    )
                    | Q(
                        stage__in=[c.value for c in ACTION_STAGES],
                        plan_action__isnull=False,
                        due__isnull=False,
                        recommendation__isnull=True,
                        review_due__isnull=True,
                        event__isnull=True,
                        measure__isnull=True,
                        inspection__isnull=True,
                        deadline="",
                    )
                    | Q(
                        stage__in=[c.value for c in MEASURE_STAGES],
                        measure__isnull=False,
                        due__isnull=False,
                        recommendation__isnull=True,
                        review_due__isnull=True,
                        event__isnull=True,
                        plan_action__isnull=True,
                        inspection__isnull=True,
                        deadline="",
                    )
                    | Q(
                        stage__in=[c.value for c in DEADLINE_STAGES],
                        inspection__isnull=False,
                        deadline__in=[c.value for c in DeadlineKind],
                        due__isnull=False,
                        recommendation__isnull=True,
                        review_due__isnull=True,
                        event__isnull=True,
                        plan_action__isnull=True,
                        measure__isnull=True,
                    )
                ),
                name="reminder_shape",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=[c.value for c in ReminderStage]), name="reminder_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=[c.value for c in ReminderState]), name="reminder_state_valid"
            ),
            text_length_check("reminder", "last_error", SHORT_TEXT),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            # Delivery reads back the rows it has just claimed by their lease token.
            models.Index(fields=["lease_token"], name="reminder_lease_token_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_stage_display()} reminder to {self.recipient} for {self.item_label}"

    @property
    def item_label(self) -> str:
        """What the row is about, by id only (the admin's list shows it; no titles)."""
        if self.plan_action_id is not None:
            return f"plan action {self.plan_action_id}"
        if self.measure_id is not None:
            return f"measure {self.measure_id}"
        if self.inspection_id is not None:
            return f"{self.get_deadline_display().lower()} of inspection {self.inspection_id}"
        return f"recommendation {self.recommendation_id}"


class NotificationKind(models.TextChoices):
    """What a person chooses the timing of, on the notification settings page."""

    OWNERSHIP = "ownership", "Recommendations given to you or taken from you"
    AWAITING_ASSURANCE = "awaiting_assurance", "Submissions awaiting your assurance"
    RETURNED = "returned", "Work returned to you: evidence or a submission rejected, a recommendation reopened"
    ACCEPTED = "accepted", "Evidence accepted and recommendations closed"
    TARGET_MOVED = "target_moved", "Target dates moved"
    ESCALATIONS = "escalations", "Escalations: badly overdue reviews and recommendations without an owner"


class NotificationDelivery(models.TextChoices):
    IMMEDIATE = "immediate", "Within minutes"
    DAILY = "daily", "In the daily digest"
    OFF = "off", "Off"


class NotificationPreference(models.Model):
    """One person's choice of timing for one kind of notification. No row: the kind's default."""

    Kind = NotificationKind
    Delivery = NotificationDelivery

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    delivery = models.CharField(max_length=16, choices=Delivery.choices)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["user", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once_per_kind"),
            models.CheckConstraint(
                condition=Q(kind__in=[c.value for c in NotificationKind]), name="notification_preference_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(delivery__in=[c.value for c in NotificationDelivery]),
                name="notification_preference_delivery_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_kind_display()} {self.get_delivery_display().lower()}"


class AccessLog(models.Model):
    """Who read or took what: evidence downloads, exports, calendar feeds."""

    class Action(models.TextChoices):
        EVIDENCE_DOWNLOAD = "evidence_download", "Evidence downloaded"
        EXPORT = "export", "Recommendations exported"
        IMPORT = "import", "Recommendations imported"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now)
    object_repr = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.user} at {self.at:%Y-%m-%d %H:%M}"


class CalendarFeedToken(models.Model):
    """A private, revocable link to a user's calendar of review and target dates (for Outlook).

    Only a SHA-256 hash of the token is stored: the link is shown once, when it is made, and a
    database leak does not hand out working feed URLs.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"Calendar feed for {self.user} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SweepRun(models.Model):
    """One row per London date whose review sweep has planned that day's reminders.

    The delivery tick looks for today's row: none once the scheduled time has passed means beat
    missed the sweep (it was down at the time, or the queued sweep was lost with the broker), and the
    tick runs it (``tracker.schedule``). The health page and ``check_reminders`` read ``finished_at``.
    A second sweep on the same day (a start-up sweep, a catch-up racing beat) moves ``finished_at``
    on and leaves the rest as the first one wrote it.
    """

    day = models.DateField(unique=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(help_text="When the day's latest sweep finished planning.")
    planned = models.PositiveIntegerField(default=0, help_text="Reminders the day's first sweep added.")
    caught_up = models.BooleanField(
        default=False, help_text="The day's first sweep was run by the delivery tick: beat had missed it."
    )

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Review sweep of {self.day:%Y-%m-%d}{' (caught up)' if self.caught_up else ''}"


class ExportJob(models.Model):
    """A file the worker makes for one user (an Excel export, a large CSV export, a board-pack PDF), and its
    progress.

    ``key`` is a hash of the user, the kind, the normalised query and a version of the data it reads
    (``tracker.jobs.data_version``): asking again while the data is unchanged finds this job and its
    file. At most one job that has not failed exists per key; a failed one is kept to show why, and
    asking again makes a new one.
    """

    class Kind(models.TextChoices):
        XLSX = "xlsx", "Excel export"
        CSV = "csv", "CSV export"
        BOARD_PACK_PDF = "board_pack_pdf", "Board pack PDF"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Being made"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    # Unguessable, so a job's address says nothing about how many others exist.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    query = models.CharField(max_length=2000, blank=True, help_text="The normalised query string it was made from.")
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    key = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    file = models.FileField(storage=ExportStorage, blank=True, max_length=200)
    filename = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "kind", "query"], name="exportjob_user_kind_query_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=~Q(state="failed"), name="exportjob_one_live_job_per_key"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["xlsx", "csv", "board_pack_pdf"]), name="exportjob_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "running", "ready", "failed"]), name="exportjob_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user} ({self.get_state_display().lower()})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.READY, self.State.FAILED)


class ImportJob(models.Model):
    """An uploaded import (``tracker.imports``) run by the worker, and what came of it.

    The file waits in private storage until the worker has read it, then is deleted. A job is all or
    nothing, like the import it runs: it ends "done" (imported, or for a dry run checked) with its
    report, or "failed" with the file's problems by row and column, having changed nothing.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        CHECKING = "checking", "Checking"
        SAVING = "saving", "Saving"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # Problems kept on the job and shown: a file wrong on every row would otherwise make a page of megabytes.
    MAX_PROBLEMS = 500

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    dry_run = models.BooleanField(default=False)
    filename = models.CharField(max_length=200)
    upload = models.FileField(storage=ImportStorage, blank=True, max_length=200)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0, help_text="Rows in the file, once read.")
    done = models.PositiveIntegerField(default=0, help_text="Rows checked so far.")
    problems = models.JSONField(default=list, blank=True, help_text="The first problems, as shown.")
    problem_count = models.PositiveIntegerField(default=0)
    inspections = models.JSONField(default=list, blank=True, help_text="The slugs imported (or that would be).")
    rows = models.PositiveIntegerField(default=0, help_text="Recommendations imported (or that would be).")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="importjob_user_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "checking", "saving", "done", "failed"]),
                name="importjob_state_valid",
            ),
        ]

    def __str__(self) -> str:
        what = "Check" if self.dry_run else "Import"
        return f"{what} of {self.filename} by {self.user} ({self.get_state_display().lower()})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


class SavedFilter(models.Model):
    """A person's own named filter of the recommendation list: the list's query string, nothing more.

    Private to its owner (every read is ``user=request.user``); the organisation is kept so that a
    person who moves organisation does not carry filters naming the old one's inspections.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="savedfilter_name_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


# Issue 16: from recommendation to better outcomes. Every write goes through tracker.workflow; the rules
# (who may, and when) are tracker.policy's; whether measures are at target is tracker.outcomes'.


class PlanActionStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    BLOCKED = "blocked", "Blocked"


class PlanAction(models.Model):
    """One action of a recommendation's plan: what will be done, by whom, by when.

    Named so as not to clash with ``tracker.permissions.Action`` (what a person may do). The
    recommendation's owner stays accountable for the whole; the action's owner is responsible for it.
    """

    Status = PlanActionStatus

    recommendation = models.ForeignKey(Recommendation, on_delete=models.PROTECT, related_name="plan_actions")
    description = bounded_text(SHORT_TEXT, help_text="What will be done.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="plan_actions")
    due_date = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NOT_STARTED)
    blocked_reason = bounded_text(SHORT_TEXT, blank=True, help_text="Why it is blocked (required when blocked).")
    evidence_link = models.URLField(blank=True, max_length=500, help_text="Optional: where to see that it is done.")
    completed_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every write through tracker.workflow, like a recommendation's.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_date", "pk"]
        indexes = [
            models.Index(fields=["recommendation", "due_date"], name="planaction_rec_due_idx"),
            models.Index(fields=["owner", "status", "due_date"], name="planaction_owner_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[c.value for c in PlanActionStatus]), name="planaction_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="blocked") | ~Q(blocked_reason=""), name="planaction_blocked_has_reason"
            ),
            text_length_check("planaction", "description", SHORT_TEXT),
            text_length_check("planaction", "blocked_reason", SHORT_TEXT),
        ]

    def __str__(self) -> str:
        return f"Action on {self.recommendation_id}: {self.description[:60]}"

    @classmethod
    def open_q(cls) -> Q:
        return ~Q(status=PlanActionStatus.DONE)

    @classmethod
    def slipped_q(cls, today: dt.date) -> Q:
        """Not done, and its due date has passed (due today is not slipped yet)."""
        return cls.open_q() & Q(due_date__lt=today)

    def is_slipped(self, today: dt.date | None = None) -> bool:
        return matches(self, self.slipped_q(today or timezone.localdate()))


class MeasureDirection(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"


class MeasureFrequency(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"


class OutcomeMeasure(models.Model):
    """How we will know a recommendation worked: a counted measure with a baseline, a target and data."""

    Direction = MeasureDirection

    Frequency = MeasureFrequency

    recommendation = models.ForeignKey(Recommendation, on_delete=models.PROTECT, related_name="measures")
    name = models.CharField(max_length=200)
    definition = bounded_text(SHORT_TEXT, help_text="How it is counted: what is included, from which source.")
    unit = models.CharField(max_length=40, help_text="For example %, days, cases.")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    baseline_value = models.DecimalField(max_digits=14, decimal_places=4)
    baseline_period = models.DateField(help_text="The first day of the month or quarter the baseline describes.")
    target_value = models.DecimalField(max_digits=14, decimal_places=4)
    target_date = models.DateField()
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    supplier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="supplied_measures",
        help_text="Who enters its data.",
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["recommendation", "name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(direction__in=[c.value for c in MeasureDirection]), name="measure_direction_valid"
            ),
            models.CheckConstraint(
                condition=Q(frequency__in=[c.value for c in MeasureFrequency]), name="measure_frequency_valid"
            ),
            models.UniqueConstraint(fields=["recommendation", "name"], name="measure_name_unique_per_recommendation"),
            text_length_check("measure", "definition", SHORT_TEXT),
        ]

    def __str__(self) -> str:
        return self.name

    def meets_target(self, value) -> bool:
        """Whether one period's value is at or better than the target, in this measure's direction."""
        if self.direction == MeasureDirection.LOWER:
            return value <= self.target_value
        return value >= self.target_value


class MeasureDataPoint(models.Model):
    """One period's value of a measure. Corrected in place with a reason; history keeps every value."""

    measure = models.ForeignKey(OutcomeMeasure, on_delete=models.PROTECT, related_name="data_points")
    period = models.DateField(help_text="The first day of the month or quarter.")
    value = models.DecimalField(max_digits=14, decimal_places=4)
    note = bounded_text(SHORT_TEXT, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField(default=timezone.now)
    correction_reason = bounded_text(SHORT_TEXT, blank=True, help_text="Why the value was last corrected.")
    version = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["measure", "period"]
        constraints = [
            models.UniqueConstraint(fields=["measure", "period"], name="datapoint_one_per_period"),
            text_length_check("datapoint", "note", SHORT_TEXT),
            text_length_check("datapoint", "correction_reason", SHORT_TEXT),
            # A corrected value (version > 1) always says why.
            models.CheckConstraint(
                condition=Q(version=1) | ~Q(correction_reason=""), name="datapoint_correction_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.measure} {self.period:%Y-%m}: {self.value}"


class RecommendationCount(models.Model):
    """How many recommendations an inspection has of each status and RAG rating: kept, never computed.

    Written only by database triggers on the recommendations and findings (``tracker.counts``), in the
    writing transaction, so that every write (the workflow, bulk imports, the admin, raw SQL) keeps it
    right; the dashboard reads these few rows instead of every recommendation.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=32)
    rag = models.CharField(max_length=8, blank=True)
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "inspection", "status", "rag"], name="reccount_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.inspection_id} {self.status}/{self.rag or '-'}: {self.n}"


class ThemeStatusCount(models.Model):
    """How many of an organisation's recommendations have a theme, a status and a next review date: kept
    by triggers like ``RecommendationCount``, for the list filtered by a theme (its counts by status, and
    the overdue ones among them: the date is in the key because overdue depends on today)."""

    # The unique constraint leads with it: no index of its own.
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+", db_index=False)
    theme = models.ForeignKey(Theme, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=32)
    next_review_due = models.DateField()
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "theme", "status", "next_review_due"], name="themestatuscount_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.theme_id} {self.status} {self.next_review_due}: {self.n}"


class ThemeCount(models.Model):
    """How many findings (strengths aside) of an inspection carry a theme: kept by triggers like
    ``RecommendationCount``, for the dashboard's themes."""

    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="+")
    theme = models.ForeignKey(Theme, on_delete=models.CASCADE, related_name="+")
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["inspection", "theme"], name="themecount_unique")]

    def __str__(self) -> str:
        return f"{self.inspection_id} {self.theme_id}: {self.n}"

"""Review reminders: the sweep that decides what is due, and the delivery that sends it exactly once.

``plan`` turns the current state of the recommendations into rows of the reminder ledger. Due work
is a query on state (``next_review_due`` against today), never a time window, so a missed day
catches up and a repeated run inserts nothing new: the ledger's unique constraint has the last word.

``deliver`` claims due ledger rows with a conditional UPDATE and a lease token, so two workers never
send the same row; re-checks each row against the recommendation as it is now, by the same
``rules`` the planner runs as SQL (a completed review or a new owner cancels what is no longer
due); sends one digest per recipient over one connection
per batch; and records every outcome on the rows. A digest is marked sent as soon as it is handed
over, so a worker that dies mid-batch can repeat at most the one digest it was sending. The lease is
held, not assumed: it is renewed right before each digest, and a worker that finds it lost sends
nothing more for those rows. Nothing here sends inside a transaction, whose rollback would keep the
mail and lose the marks.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import smtplib
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import DateField, DateTimeField, F, Func, IntegerField, Q, QuerySet, Value
from django.utils import timezone

from tracker import emails, ledger_items, notifications
from tracker.models import Recommendation, Reminder, User
from tracker.permissions import Role
from tracker.predicates import matches, value_at

logger = logging.getLogger(__name__)

Stage = Reminder.Stage
State = Reminder.State

# From a recommendation to the people of its organisation, among whom are its governance leads.
_LEADS = "finding__inspection__organisation__users"


@dataclass(frozen=True)
class Policy:
    """When each stage fires. Defaults come from settings (REMINDER_*)."""

    lead_days: int = 7
    overdue_repeat_days: int = 7
    escalation_days: int = 14

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            lead_days=settings.REMINDER_LEAD_DAYS,
            overdue_repeat_days=settings.REMINDER_OVERDUE_REPEAT_DAYS,
            escalation_days=settings.REMINDER_ESCALATION_DAYS,
        )


class DaysBetween(Func):
    """Whole days from ``earlier`` to ``later`` (two dates), in SQL."""

    output_field = IntegerField()
    arg_joiner = " - "
    template = "(%(expressions)s)"  # PostgreSQL: date - date is already a whole number of days

    def __init__(self, later, earlier) -> None:
        super().__init__(later, earlier)

    def as_sqlite(self, compiler, connection, **extra_context):
        later, earlier = (compiler.compile(expression) for expression in self.get_source_expressions())
        return f"CAST(ROUND(julianday({later[0]}) - julianday({earlier[0]})) AS INTEGER)", (*later[1], *earlier[1])


# ---------------------------------------------------------------------------------------------
# Planning: what is due, as queries on state.
# ---------------------------------------------------------------------------------------------

# The ledger's key columns, for every shape of row the sweep plans (tracker.ledger_items fills its own).
_KEY = ("_rec", "_to", "_stage", "_due", "_occ", "_action", "_measure", "_inspection", "_deadline", "_date")
_SELECT = (*_KEY, "_state", "_attempts", "_error", "_next", "_token", "_created")
_COLUMNS = (
    "recommendation",
    "recipient",
    "stage",
    "review_due",
    "occurrence",
    "plan_action",
    "measure",
    "inspection",
    "deadline",
    "due",
    "state",
    "attempts",
    "last_error",
    "next_attempt_at",
    "lease_token",
    "created_at",
)


# Who a reminder goes to, by where the recipient is found from the recommendation.
OWNER = "owner_id"
CONTACT = "owner__escalation_contact_id"
LEADS = "leads"  # the active governance leads of the recommendation's organisation


@dataclass(frozen=True)
class Rule:
    """One way a reminder can be due today: for which recommendations, to whom, at which stage.

    ``when`` is a Q on Recommendation. The planner turns the rules into SQL and the delivery re-checks
    each row against the same rules in Python (``tracker.predicates.matches``), so the two agree.
    """

    stage: str
    when: Q
    to: str  # OWNER, CONTACT or LEADS
    weekly: bool = False  # repeated every overdue_repeat_days, counted by ``occurrence``


@functools.lru_cache(maxsize=8)  # delivery asks once per row; the answer depends only on the date and policy
def rules(today: dt.date, policy: Policy) -> Mapping[str, Rule]:
    owner_active = Q(owner__isnull=False, owner__is_active=True)
    contact_active = Q(owner__escalation_contact__isnull=False, owner__escalation_contact__is_active=True)
    badly_overdue = (
        Recommendation.overdue_q(today)
        & owner_active
        & Q(next_review_due__lte=today - dt.timedelta(days=policy.escalation_days))
    )
    return MappingProxyType(
        {
            "due soon": Rule(Stage.DUE_SOON, Recommendation.due_soon_q(today, policy.lead_days) & owner_active, OWNER),
            "overdue": Rule(Stage.OVERDUE, Recommendation.overdue_q(today) & owner_active, OWNER, weekly=True),
            "escalation to contact": Rule(Stage.ESCALATION, badly_overdue & contact_active, CONTACT),
            "escalation to leads": Rule(Stage.ESCALATION, badly_overdue & ~contact_active, LEADS),
            "unowned": Rule(Stage.UNOWNED, Recommendation.open_q() & ~owner_active, LEADS),
        }
    )


# The n-th weekly repeat of "overdue": 0 from the day after the review date, 1 a week later, ...
# The SQL and the Python forms sit together; the property test in tests/reminders holds them equal.


def _occurrence_sql(today: dt.date, policy: Policy):
    days_late = DaysBetween(Value(today, output_field=DateField()), F("next_review_due"))
    return (days_late - 1) / Value(policy.overdue_repeat_days)


def _occurrence(rec: Recommendation, today: dt.date, policy: Policy) -> int:
    return ((today - rec.next_review_due).days - 1) // policy.overdue_repeat_days


def due_selections(today: dt.date, policy: Policy | None = None) -> dict[str, QuerySet]:
    """One queryset per rule, each annotated with the ledger key columns.

    Every queryset yields rows of (recommendation, recipient, stage, review due date, occurrence), or,
    for a plan action, a measure or an inspection deadline (``tracker.ledger_items``), of that item.
    """
    policy = policy or Policy.from_settings()
    # The active governance leads, as a literal list: they are few, and an IN list of ids lets both
    # SQLite and PostgreSQL look them up by primary key (a subquery, or a join through the group's
    # name, sends one planner or the other through every user in the organisation).
    leads = list(
        User.objects.filter(is_active=True, groups__name=str(Role.GOVERNANCE_LEAD)).values_list("pk", flat=True)
    )
    selections = {}
    for name, rule in rules(today, policy).items():
        qs = Recommendation.objects.order_by().filter(rule.when)
        if rule.to == LEADS:
            if not leads:  # nobody to send these to (and IN () is invalid SQL)
                continue
            # One row per (recommendation, active governance lead of its organisation); the
            # annotation reuses the filter's join because the filter comes first.
            qs = qs.filter(**{f"{_LEADS}__in": leads})
            recipient = F(f"{_LEADS}__id")
        else:
            recipient = F(rule.to)
        selections[name] = qs.annotate(
            **ledger_items.key_columns(
                _rec=F("pk"),
                _to=recipient,
                _stage=Value(str(rule.stage)),
                _due=F("next_review_due"),
                _occ=_occurrence_sql(today, policy) if rule.weekly else Value(0, output_field=IntegerField()),
            )
        )
    selections.update(ledger_items.selections(today, policy, leads))
    return selections


def plan(today: dt.date | None = None, policy: Policy | None = None) -> int:
    """Insert a pending ledger row for every reminder due today that the ledger does not hold yet, and
    release the notifications held for the daily digest, so that they go out with it.

    The selections become one INSERT ... SELECT ... UNION ALL SELECT ... ON CONFLICT DO NOTHING, so the
    number of queries grows neither with the number of recommendations, actions, measures and
    inspections nor with the number of rules, and a row that exists already (sent, being sent, failed
    or cancelled) is left exactly as it is. Unlike bulk_create's SQLite "INSERT OR IGNORE", ON CONFLICT
    ignores only the unique constraints, never a CHECK or NOT NULL. Returns how many rows were added.
    """
    today = today or timezone.localdate()
    now = timezone.now()
    table = connection.ops.quote_name(Reminder._meta.db_table)
    column_sql = ", ".join(connection.ops.quote_name(Reminder._meta.get_field(c).column) for c in _COLUMNS)
    added = 0
    with transaction.atomic():
        selections = [
            selection.annotate(
                _state=Value(str(State.PENDING)),
                _attempts=Value(0, output_field=IntegerField()),
                _error=Value(""),
                _next=Value(now, output_field=DateTimeField()),
                _token=Value(""),
                _created=Value(now, output_field=DateTimeField()),
            ).values_list(*_SELECT)
            for selection in due_selections(today, policy).values()
        ]
        rows = selections[0].union(*selections[1:], all=True)
        select_sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            # Names come from the model's own metadata; values are all parameters. The compound SELECT is
            # wrapped, with a WHERE, so that SQLite cannot read ON CONFLICT as part of a join.
            cursor.execute(
                f"INSERT INTO {table} ({column_sql}) SELECT * FROM ({select_sql}) AS due_now WHERE 1 = 1 "  # noqa: S608
                "ON CONFLICT DO NOTHING",
                params,
            )
            added = max(cursor.rowcount, 0)
        notifications.release_daily(now)
    return added


# ---------------------------------------------------------------------------------------------
# Delivery: claim with a lease, re-check, send one digest per recipient, record the outcome.
# ---------------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What a delivery run did, for the command's output and the task's result."""

    sent: list[tuple[str, list[str]]] = field(default_factory=list)  # (address, item lines)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (address or user, error)
    retrying: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0
    deferred: int = 0  # rows handed back unsent because the deadline came
    server_unreachable: bool = False

    def merge(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retrying += other.retrying
        self.cancelled += other.cancelled
        self.deferred += other.deferred
        self.server_unreachable = self.server_unreachable or other.server_unreachable

    def as_dict(self) -> dict[str, int]:
        return {
            "digests_sent": len(self.sent),
            "items_sent": sum(len(items) for _, items in self.sent),
            "failed": len(self.failed),
            "retrying": len(self.retrying),
            "cancelled": self.cancelled,
            "deferred": self.deferred,
        }


class _Permanent(Exception):
    """The recipient cannot be reached this way: retrying would not help."""


def _claimable(now: dt.datetime) -> Q:
    # Pending rows whose wait is over, and rows whose worker's lease ran out (it died or hung).
    return Q(state=State.PENDING, next_attempt_at__lte=now) | Q(state=State.SENDING, lease_until__lt=now)


def _lock_whole_recipients(now: dt.datetime, limit_recipients: int) -> list[int]:
    """PostgreSQL: lock the claimable rows of up to ``limit_recipients`` recipients no other worker is claiming.

    Call inside a transaction. ``FOR UPDATE SKIP LOCKED`` passes over rows another worker is claiming at
    this moment instead of queueing behind it. A recipient is taken whole or not at all, so that each
    digest lists everything due to its recipient: if another worker holds some of their rows, all of
    them are left to it. When every candidate is busy, the next recipients are tried.
    """
    busy: set[int] = set()
    for _ in range(3):
        claimable = Reminder.objects.filter(_claimable(now)).exclude(recipient_id__in=busy).order_by()
        # Unordered, so the database can stop scanning as soon as it has found enough recipients.
        candidates = set(claimable.values_list("recipient_id", flat=True).distinct()[:limit_recipients])
        if not candidates:
            return []
        locked = dict(
            claimable.filter(recipient_id__in=candidates)
            .select_for_update(skip_locked=True)
            .values_list("pk", "recipient_id")
        )
        partial = {
            recipient
            for pk, recipient in claimable.filter(recipient_id__in=candidates).values_list("pk", "recipient_id")
            if pk not in locked
        }
        whole = set(locked.values()) - partial
        if whole:
            return [pk for pk, recipient in locked.items() if recipient in whole]
        busy |= candidates
    return []


def claim(limit_recipients: int, lease_seconds: int | None = None) -> tuple[str, list[Reminder]]:
    """Lease every claimable row of up to ``limit_recipients`` recipients to this worker.

    SQLite: the UPDATE repeats the claimable condition, so when two workers pick the same rows only
    the first UPDATE matches them; the second finds them leased and leaves them alone (SQLite has one
    writer at a time). PostgreSQL: the rows are first locked with ``SELECT ... FOR UPDATE SKIP
    LOCKED``, so concurrent workers take different recipients instead of waiting on each other; the
    UPDATE still repeats the condition.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    lease = dt.timedelta(seconds=lease_seconds or settings.REMINDER_LEASE_SECONDS)
    leased = {"state": State.SENDING, "lease_token": token, "lease_until": now + lease, "attempts": F("attempts") + 1}
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = _lock_whole_recipients(now, limit_recipients)
            claimed = Reminder.objects.filter(_claimable(now), pk__in=ids).update(**leased) if ids else 0
    else:
        # Unordered, so the database can stop scanning as soon as it has found enough recipients.
        recipients = (
            Reminder.objects.filter(_claimable(now)).order_by().values("recipient_id").distinct()[:limit_recipients]
        )
        claimed = Reminder.objects.filter(_claimable(now), recipient_id__in=recipients).update(**leased)
    if not claimed:
        return token, []
    rows = list(
        Reminder.objects.filter(lease_token=token, state=State.SENDING)
        .select_related(
            "recommendation__finding__inspection",
            "recommendation__owner__escalation_contact",
            "recipient",
            "plan_action__recommendation__finding",
            "plan_action__owner",
            "measure__recommendation__finding",
            "measure__supplier",
            "inspection__organisation",
        )
        .order_by("recipient_id", "pk")
    )
    return token, rows


def _leads_among(recipient_ids: Iterable[int]) -> set[tuple[int, int]]:
    """(user, organisation) for each of these users who is an active governance lead."""
    return set(
        User.objects.filter(
            pk__in=list(recipient_ids), is_active=True, groups__name=str(Role.GOVERNANCE_LEAD)
        ).values_list("pk", "organisation_id")
    )


def _still_due(
    row: Reminder,
    leads: set[tuple[int, int]],
    today: dt.date,
    policy: Policy,
    entered: ledger_items.Entered | None = None,
) -> bool:
    """Would the planner, run now on the recommendation as it is now, produce this very row?

    A completed review, a new owner or a closed recommendation cancels a row; so does the passage
    of time (a "due soon" whose review date has passed, an overdue repeat a week old): the sweep
    plans their successor, so nothing is lost. ``leads`` comes from ``_leads_among``; ``entered``, the
    measures' data already in (``ledger_items.Entered``), is read here when not given.
    """
    if row.event_id is not None:  # a notification of a workflow step, not a review reminder
        return notifications.still_wanted(row)
    if row.recommendation_id is None:  # a plan action, a measure or an inspection deadline
        return ledger_items.still_due(row, leads, today, policy, entered or ledger_items.Entered.for_rows([row]))
    rec = row.recommendation
    if row.review_due != rec.next_review_due:
        return False
    for rule in rules(today, policy).values():
        if rule.stage != row.stage or not matches(rec, rule.when):
            continue
        if rule.to == LEADS:
            addressed = (row.recipient_id, rec.finding.inspection.organisation_id) in leads
        else:
            addressed = row.recipient_id == value_at(rec, rule.to)
        occurrence = _occurrence(rec, today, policy) if rule.weekly else 0
        if addressed and row.occurrence == occurrence:
            return True
    return False


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: about base * 2^(attempts-1), capped, in [half, full]."""
    ceiling = min(settings.REMINDER_RETRY_MAX_SECONDS, settings.REMINDER_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _classify(exc: BaseException) -> tuple[bool, bool]:
    """(permanent, connection broken) for an error raised while sending one digest."""
    if isinstance(exc, _Permanent):
        return True, False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return all(500 <= code < 600 for code in codes), False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return False, True
    if isinstance(exc, smtplib.SMTPResponseException):
        # 421: the server is closing the connection; other 4xx are per message; 5xx are final.
        return 500 <= exc.smtp_code < 600, exc.smtp_code == 421
    # Refused connections, timeouts and other socket errors are temporary and break the connection.
    return False, isinstance(exc, OSError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Permanent):
        return str(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{addr}: {code} {msg.decode(errors='replace')}" for addr, (code, msg) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        message = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{exc.smtp_code} {message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _record_failure(token: str, rows: list[Reminder], exc: BaseException, permanent: bool) -> str:
    error = _describe(exc)[:1000]
    mine = Reminder.objects.filter(pk__in=[r.pk for r in rows], lease_token=token, state=State.SENDING)
    if permanent:
        mine.update(state=State.FAILED, last_error=error, lease_until=None)
        return error
    now = timezone.now()
    attempts = max(r.attempts for r in rows)
    if attempts >= settings.REMINDER_MAX_ATTEMPTS:
        mine.update(state=State.DEAD, last_error=error, lease_until=None)
    else:
        mine.update(
            state=State.PENDING,
            last_error=error,
            lease_until=None,
            next_attempt_at=now + dt.timedelta(seconds=backoff_seconds(attempts)),
        )
    return error


def timing_problems() -> list[str]:
    """Why a renewed lease could run out during the send it covers, if it could.

    One digest is a handful of socket operations (connect, greeting, EHLO, MAIL, RCPT, DATA, the body,
    the reply), each bounded by EMAIL_TIMEOUT: the lease renewed before it must outlast them all
    (REMINDER_SEND_TIMEOUTS of them), or another worker could take the rows mid-send.
    """
    lease = settings.REMINDER_LEASE_SECONDS
    factor = settings.REMINDER_SEND_TIMEOUTS
    if settings.EMAIL_TIMEOUT * factor < lease:
        return []
    return [
        f"EMAIL_TIMEOUT ({settings.EMAIL_TIMEOUT}s) x {factor} must be less than REMINDER_LEASE_SECONDS ({lease}s), "
        "so that a lease renewed before a digest outlasts its send."
    ]


def _refuse_inside_a_transaction() -> None:
    # A rollback would undo the "sent" marks but not the mail: the next run would send it all again.
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "Reminders are never sent inside a transaction: a rollback would keep the mail and lose the "
            "record that it was sent. Call deliver() outside transaction.atomic()."
        )


def _renew_lease(token: str, group: list[Reminder]) -> bool:
    """Extend this worker's lease on ``group`` (rows not yet sent), before a digest is handed over.

    The UPDATE matches a row only while it is still SENDING under our token; a worker whose lease ran
    out and whose rows were claimed again matches fewer rows than it asked for and must not send.
    Renewed, the rows cannot be claimed (claim needs ``lease_until < now``) until the send is long
    over (``timing_problems``). SQLite runs one writer at a time; on PostgreSQL a renewal and a claim
    of one row queue on its row lock and the second re-checks its WHERE, so both cannot win.
    """
    renewed = Reminder.objects.filter(pk__in=[r.pk for r in group], lease_token=token, state=State.SENDING).update(
        lease_until=timezone.now() + dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    )
    return renewed == len(group)


def _release(token: str, rows: list[Reminder]) -> int:
    """Hand back rows we still hold but will not send now: due again at once, the claim's attempt undone."""
    return Reminder.objects.filter(pk__in=[r.pk for r in rows], lease_token=token, state=State.SENDING).update(
        state=State.PENDING, lease_until=None, next_attempt_at=timezone.now(), attempts=F("attempts") - 1
    )


def _by_recipient(rows: Iterable[Reminder]) -> Iterator[tuple[User, list[Reminder]]]:
    groups: dict[int, list[Reminder]] = defaultdict(list)
    for row in rows:
        groups[row.recipient_id].append(row)
    for group in groups.values():
        yield group[0].recipient, group


def _deliver_batch(token: str, rows: list[Reminder], today: dt.date, deadline: float | None = None) -> DeliveryReport:
    report = DeliveryReport()
    leads = _leads_among({row.recipient_id for row in rows})
    policy = Policy.from_settings()
    entered = ledger_items.Entered.for_rows(rows)
    # After a long outage two weekly repeats of one overdue reminder may both be waiting: only the
    # latest is still due, so the older one is cancelled here.
    stale = [row for row in rows if not _still_due(row, leads, today, policy, entered)]
    if stale:
        # A completed review, a new owner, a closed recommendation: this reminder is no longer due.
        report.cancelled = Reminder.objects.filter(pk__in=[r.pk for r in stale], lease_token=token).update(
            state=State.CANCELLED, lease_until=None
        )
    # A row whose every lease ran out (its worker died each time) would otherwise go round forever.
    stale_ids = {row.pk for row in stale}
    exhausted = [r for r in rows if r.attempts > settings.REMINDER_MAX_ATTEMPTS and r.pk not in stale_ids]
    if exhausted:
        Reminder.objects.filter(pk__in=[r.pk for r in exhausted], lease_token=token).update(
            state=State.DEAD, lease_until=None, last_error="gave up: every attempt's worker was lost mid-send"
        )
        report.failed += [
            (row.recipient.email or str(row.recipient), "worker lost on every attempt") for row in exhausted
        ]
    skip = stale_ids | {row.pk for row in exhausted}
    live = [row for row in rows if row.pk not in skip]
    mail = get_connection(fail_silently=False)
    connection_open = False
    groups = list(_by_recipient(live))
    # The lease is held, not assumed. While more than half of it remains nobody else can claim these rows
    # (a claim needs ``lease_until < now``, and half a lease is far more than any clock skew), so a send
    # goes ahead without a query; past that, it is renewed by a conditional UPDATE first (_renew_lease).
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    held_until = min((row.lease_until for row in live if row.lease_until), default=timezone.now())
    try:
        for index, (recipient, group) in enumerate(groups):
            if deadline is not None and time.monotonic() >= deadline:
                # Out of time: the rest is due again at once, for the next run.
                report.deferred = _release(token, [row for _, rest in groups[index:] for row in rest])
                break
            try:
                if not recipient.email:
                    raise _Permanent("no email address")
                items = [emails.DigestItem.from_reminder(row) for row in group if row.review_due is not None]
                notices = [emails.Notice.from_reminder(row) for row in group if row.event_id is not None]
                dates = [emails.DateItem.from_reminder(row) for row in group if row.due is not None]
                message = emails.review_digest(recipient, items, notices, dates)
                if not connection_open:
                    mail.open()  # one connection for the whole batch
                    connection_open = True
                if held_until - timezone.now() < lease / 2:
                    # Renew before sending once half the lease is gone: the whole rest of the batch in one
                    # UPDATE, or, if some of it was lost, this recipient's rows alone.
                    rest = [row for _, other_group in groups[index:] for row in other_group]
                    renewed_at = timezone.now()
                    if _renew_lease(token, rest):
                        held_until = renewed_at + lease
                    elif not _renew_lease(token, group):
                        # Our lease ran out and another worker holds (some of) these rows: it sends them.
                        _release(token, group)
                        logger.warning(
                            "Lost the lease on user %s's reminders; leaving them to their new holder", recipient.pk
                        )
                        continue
                mail.send_messages([message])
            except SoftTimeLimitExceeded:
                raise  # the rows stay leased and are picked up again when the lease runs out
            except Exception as exc:
                permanent, broken = _classify(exc)
                if not isinstance(exc, smtplib.SMTPException | OSError | _Permanent):
                    logger.exception("Unexpected error sending reminders to user %s", recipient.pk)
                error = _record_failure(token, group, exc, permanent)
                (report.failed if permanent else report.retrying).append((recipient.email or str(recipient), error))
                if broken:
                    # The server is gone: put the rest of the batch back to wait rather than hammer it.
                    report.server_unreachable = True
                    for other, other_group in groups[index + 1 :]:
                        error = _record_failure(token, other_group, exc, permanent=False)
                        report.retrying.append((other.email or str(other), error))
                    break
                continue
            # Handed over: record it at once, so a crash from here on repeats no other digest.
            marked = Reminder.objects.filter(
                pk__in=[r.pk for r in group], lease_token=token, state=State.SENDING
            ).update(state=State.SENT, sent_at=timezone.now(), lease_until=None, last_error="")
            if marked != len(group):  # cannot happen while sends stay inside the lease (timing_problems)
                logger.error(
                    "Sent user %s a digest of %d reminder(s) but held only %d of them by then",
                    recipient.pk,
                    len(group),
                    marked,
                )
            report.sent.append(
                (
                    recipient.email,
                    [f"{i.reference} {i.stage_label.lower()} (review due {i.review_due})" for i in items]
                    + [f"{n.stage_label.lower()} ({n.url})" for n in notices]
                    + [f"{d.stage_label.lower()} (due {d.due}, {d.url})" for d in dates],
                )
            )
    finally:
        if connection_open:
            try:
                mail.close()
            except Exception:  # closing a connection that has already failed
                logger.debug("Closing the mail connection failed", exc_info=True)
    return report


def deliver(
    *, batch_recipients: int | None = None, deadline: float | None = None, today: dt.date | None = None
) -> DeliveryReport:
    """Send everything that is due, batch by batch, until nothing is claimable or time is short.

    ``deadline`` is a ``time.monotonic()`` value after which no new digest is started (the rows not
    reached are handed back), so a task finishes well inside its time limit. Each row is re-checked
    against the rules as of ``today`` (the London date by default). Refuses to run inside a transaction.
    """
    _refuse_inside_a_transaction()
    report = DeliveryReport()
    limit = batch_recipients or settings.REMINDER_BATCH_RECIPIENTS
    while deadline is None or time.monotonic() < deadline:
        token, rows = claim(limit)
        if not rows:
            break
        report.merge(_deliver_batch(token, rows, today or timezone.localdate(), deadline))
        if report.server_unreachable:
            break  # leave the other batches for the next run rather than knock on a closed door
    return report


def run_sweep(today: dt.date | None = None) -> DeliveryReport:
    """The whole daily job, synchronously: plan what is due, then deliver it."""
    plan(today)
    return deliver(today=today)


def request_delivery() -> None:
    """Ask a worker to deliver due reminders once the current transaction commits (never if it rolls back)."""
    from tracker.tasks import deliver_due_reminders

    # robust: if the broker is down the commit still stands, and the every-minute tick delivers instead.
    transaction.on_commit(deliver_due_reminders.delay, robust=True)


def retry_now(reminder_ids: Iterable[int]) -> int:
    """Put failed or dead rows back in the queue for an immediate attempt, and ask for delivery."""
    with transaction.atomic():
        count = Reminder.objects.filter(pk__in=list(reminder_ids), state__in=[State.FAILED, State.DEAD]).update(
            state=State.PENDING, attempts=0, next_attempt_at=timezone.now(), lease_until=None, lease_token=""
        )
        if count:
            request_delivery()
    return count

"""Staff pages. Each view parses input, asks ``tracker.policy`` what may happen, calls workflow, renders.

Anything a user may not see is a 404 (it does not exist for them); something their role never lets
them do is a 403 page that says why; something they could do, but not now (the state refuses), is a
409 page that says why and links back. Every change goes through ``tracker.workflow``.
"""

from __future__ import annotations

import copy
import datetime as dt
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce, wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tracker import bulk, deadlines, inbox, keyset, permissions, policy, search, sources, workflow
from tracker import counts as tracker_counts
from tracker import forms as staff_forms
from tracker.models import AccessLog, Evidence, Finding, Recommendation, RecommendationEvent, SavedFilter
from tracker.permissions import Action
from tracker.policy import Decision

PAGE_SIZE = 50
SEARCH_COUNT_LIMIT = 1000  # a search's matches counted at most: beyond, the list says "more than 1,000"


def staff_page(view: Callable) -> Callable:
    """Sign-in required; a refusal from the permission module becomes a 403 page with its message."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except permissions.NotPermitted as exc:
            return render(request, "tracker/forbidden.html", {"message": str(exc)}, status=403)

    return login_required(never_cache(wrapper))


def _recommendation(request: HttpRequest, pk: int) -> Recommendation:
    return get_object_or_404(permissions.visible_recommendations(request.user).with_related(), pk=pk)


# Reading.


def _links(request: HttpRequest, page: keyset.Page, param: str, anchor: str = "") -> dict[str, str | None]:
    """The next and previous links of a keyset page: this page's query with the cursor in ``param``."""

    def link(cursor: str | None) -> str | None:
        if cursor is None:
            return None
        query = request.GET.copy()
        query.pop("page", None)
        query[param] = cursor
        return f"?{query.urlencode()}{anchor}"

    return {"next": link(page.next_cursor), "previous": link(page.previous_cursor)}


def _page(queryset, ordering, cursor: str | None, size: int, **options) -> keyset.Page:
    """A keyset page; a cursor that is garbled, or from another sort order, starts again at the first page."""
    try:
        return keyset.paginate(queryset, ordering, cursor, size, **options)
    except keyset.InvalidCursor:
        return keyset.paginate(queryset, ordering, None, size, **options)


@staff_page
def home(request: HttpRequest) -> HttpResponse:
    """A task inbox: each of the person's groups of work with its count, its first rows and a link to all."""
    visible = permissions.visible_recommendations(request.user)
    sections = inbox.inbox(request.user, visible)
    context = {"sections": sections, "today": timezone.localdate(), "rows_shown": inbox.INBOX_ROWS}
    returned = next((g for _title, groups in sections for g in groups if g.group.key == "returned"), None)
    context["returned"] = returned
    context["deadlines"] = inbox.inspection_deadlines(request.user, context["today"])
    context["ahead_days"], context["passed_days"] = deadlines.INBOX_AHEAD_DAYS, deadlines.INBOX_PASSED_DAYS
    if inbox.shows_summary(request.user):
        context["figures"] = inbox.summary(request.user, visible)
        context["changes"] = inbox.changes_since(request.user, visible)
    return render(request, "tracker/home.html", context)


# The list's bulk changes, each offered when the policy allows it on at least one row of the page.
BULK_ACTIONS = {
    "owner": Action.REASSIGN,
    "target_date": Action.CHANGE_TARGET_DATE,
    "rag": Action.SET_RAG,
    "review_interval_days": Action.CHANGE_REVIEW_INTERVAL,
}


def _list_query(request: HttpRequest) -> str:
    """This list's filters as a query string, without the page it is on: what is saved and shared."""
    query = request.GET.copy()
    for name in ("cursor", "page"):
        query.pop(name, None)
    return query.urlencode()


SEARCH_WALK = 5000  # rows of the list, in its order, that a search tests one by one before using the index


def _first_matches(filterset, results, ordering, overdue) -> list[tuple[int, str, bool]]:
    """(id, status, overdue) of a search's first SEARCH_COUNT_LIMIT + 1 matches (at least a page and one) in
    list order.

    From the search index (``tracker.search``) every match is found and then sorted: 23 ms on PostgreSQL at
    50,000 for a common word (a third of everything). But a common word's first thousand matches lie within
    the list's first few thousand rows: so where ``search.tests_rows_first``, in an order led by a column of
    the recommendation, the rows up to the SEARCH_WALK-th are first tested one by one, read from the order's
    index (a common word stops after about 3,000). The search index is
    read only when they hold too few matches and are not all there is (a rarer word). Both select by the
    same rule (``search.like`` is what ``search.matches`` means).
    """
    limit = max(SEARCH_COUNT_LIMIT, PAGE_SIZE) + 1

    def read(queryset, **extra) -> list[tuple]:
        shaped = keyset.in_order(queryset, ordering).annotate(
            is_overdue=ExpressionWrapper(overdue, output_field=BooleanField()), **extra
        )
        return list(shaped.values_list("pk", "status", "is_overdue", *extra)[:limit])

    lead = keyset.keys(Recommendation, ordering)[0]
    words = filterset.form.cleaned_data["q"].strip()
    if lead.nullable or "__" in lead.path or not search.tests_rows_first(words):
        return read(results)
    unsearched = filterset.unsearched()
    leading = keyset.in_order(unsearched, ordering).values(lead.path)
    # The leading key of the SEARCH_WALK-th row (none when there are fewer rows), or else of the last row.
    edge = Subquery(leading[SEARCH_WALK - 1 : SEARCH_WALK])
    last = Subquery(keyset.in_order(unsearched, [f"{'' if lead.descending else '-'}{lead.path}"]).values(lead.path)[:1])
    within = Q(**{f"{lead.path}__{'gte' if lead.descending else 'lte'}": Coalesce(edge, last)})
    near = read(unsearched.filter(within).filter(search.like(words)), edge=edge)
    if len(near) == limit or (near and near[0][3] is None):
        return [row[:3] for row in near]
    return read(results)


# The list's filters that read only a recommendation's status and review date: with a theme, they select
# among the rows kept by theme (tracker.counts.in_theme) as among the recommendations.
KEPT_BY_THEME = {"status", "overdue", "due_before", "due_after"}
# The list's filters that the kept counts by status and RAG (tracker.counts) answer for themselves.
KEPT_BY_STATUS_AND_RAG = {"status", "rag"}


def _narrowed_by(filterset) -> set[str] | None:
    """The filters that narrow the list (a sort or a page is not a filter); None when one is refused."""
    if not filterset.is_bound:
        return set()
    if not filterset.is_valid():
        return None
    return {name for name, value in filterset.form.cleaned_data.items() if value not in (None, "", [])}


def _list_post(request: HttpRequest, bulk_form) -> HttpResponse | None:
    """The list's own forms: bulk changes, and saving or deleting a saved filter. None: show the errors."""
    which = request.POST.get("form")
    query = _list_query(request)
    back = reverse("tracker:recommendations") + (f"?{query}" if query else "")
    if which == "bulk":
        if not bulk_form.is_valid():
            return None
        data = bulk_form.cleaned_data
        result = bulk.apply(
            request.user,
            bulk_form.rows,
            owner=data.get("owner"),
            target_date=data.get("target_date"),
            rag=data.get("rag") or "",
            review_interval_days=data.get("review_interval_days"),
            reason=data.get("reason") or "",
        )
        (messages.warning if result.refused else messages.success)(request, result.message())
        return redirect(back)
    if which == "save-filter":
        form = staff_forms.SaveFilterForm(request.POST)
        if form.is_valid():
            SavedFilter.objects.update_or_create(
                user=request.user,
                name=form.cleaned_data["name"].strip(),
                defaults={"organisation_id": request.user.organisation_id, "query": _list_query(request)},
            )
            messages.success(request, f"Saved this filter as \u201c{form.cleaned_data['name'].strip()}\u201d.")
        else:
            messages.warning(request, "Give the filter a name of at most 80 characters; nothing was saved.")
        return redirect(back)
    if which == "delete-filter":
        pk = request.POST.get("saved", "")
        # Only the person's own: anybody else's id deletes nothing.
        deleted, _ = SavedFilter.objects.filter(user=request.user, pk=pk if pk.isdigit() else None).delete()
        if deleted:
            messages.success(request, "The saved filter has been deleted.")
        return redirect(back)
    return redirect(back)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def recommendation_list(request: HttpRequest) -> HttpResponse:
    """All the recommendations a person may see, filtered; an owner's are only their own."""
    sees_all = permissions.sees_whole_organisation(request.user)
    visible = permissions.visible_recommendations(request.user).with_related()
    filterset = staff_forms.staff_filter(request.GET or None, visible, request, own_only=not sees_all)
    if filterset.is_bound and not filterset.is_valid():
        # Never silently "everything": the error summary says which filter to fix, and nothing is listed.
        results = visible.none()
    else:
        results = filterset.qs if filterset.is_bound else visible
    sort = request.GET.get("sort", "due")
    if sort not in staff_forms.SORTS:
        sort = "due"
    # A search may match a large share of everything: it is counted only up to SEARCH_COUNT_LIMIT matches
    # (one more says "more than"), in one read that gives the first page's ids too: up to the limit's
    # matching ids in list order, each with what the counts need.
    searched = filterset.is_bound and filterset.is_valid() and bool(filterset.form.cleaned_data.get("q", "").strip())
    overdue = Recommendation.overdue_q(timezone.localdate())
    capped = None
    if searched:
        capped = _first_matches(filterset, results, staff_forms.SORTS[sort], overdue)
    # The page's rows by id from what the person may see: the filters (a search's index) are read once.
    page = _page(
        results,
        staff_forms.SORTS[sort],
        request.GET.get("cursor"),
        PAGE_SIZE,
        rows_from=visible,
        ids=None if capped is None else [pk for pk, _status, _overdue in capped],
    )
    # What may be done in bulk to this page's rows: the policy, row by row (no query: these rules read the row).
    offered, selectable = set(), set()
    for rec in page.rows:
        decided = policy.decisions(request.user, rec, actions=BULK_ACTIONS.values())
        allowed = {name for name, action in BULK_ACTIONS.items() if decided[action]}
        offered |= allowed
        if allowed:
            selectable.add(rec.pk)
    bulk_form = staff_forms.BulkForm(
        request.POST if request.POST.get("form") == "bulk" else None,
        organisation_id=request.user.organisation_id,
        offered=offered or set(BULK_ACTIONS),
    )
    if request.method == "POST":
        response = _list_post(request, bulk_form)
        if response is not None:
            return response
    # Every count in one query: for the whole organisation, unfiltered or by a theme (and its status or review
    # date), from the counts kept as rows change; for a search, from its capped read; otherwise grouped over
    # the filtered rows (overdue ones are all open).
    narrowed = _narrowed_by(filterset)
    kept = tracker_counts.kept_for(request.user) is not None
    if capped is not None:
        by_status = Counter(status for _pk, status, _overdue in capped[: SEARCH_COUNT_LIMIT + 1])
        overdue_count = sum(bool(is_overdue) for _pk, _status, is_overdue in capped[: SEARCH_COUNT_LIMIT + 1])
    elif kept and narrowed == set():
        by_status, overdue_count = tracker_counts.by_status(request.user.organisation_id, timezone.localdate())
    elif kept and narrowed and narrowed <= KEPT_BY_STATUS_AND_RAG:
        # The counts by status from the kept rows the same filters select; the overdue ones, which depend on
        # today, counted over the filtered rows from their indexes. Grouping the filtered rows themselves
        # read every one of them: 8 ms on PostgreSQL and 20 on SQLite at 50,000 for one status and RAG.
        rows = filterset.filter_queryset(
            tracker_counts.kept_for(request.user), skip=set(filterset.filters) - KEPT_BY_STATUS_AND_RAG
        )
        by_status, overdue_count = tracker_counts.by_status_of(rows, results.filter(overdue))
    elif kept and narrowed and "theme" in narrowed and narrowed <= {"theme", *KEPT_BY_THEME}:
        rows = tracker_counts.in_theme(request.user.organisation_id, filterset.form.cleaned_data["theme"].pk)
        rows = filterset.filter_queryset(rows, skip=set(filterset.filters) - KEPT_BY_THEME)
        by_status, overdue_count = tracker_counts.by_status_in(rows, timezone.localdate())
    else:
        grouped = list(
            results.order_by().values_list("status").annotate(n=Count("pk"), overdue=Count("pk", filter=overdue))
        )
        by_status = {status: n for status, n, _overdue in grouped}
        overdue_count = sum(late for _status, _n, late in grouped)
    counts = [(label, by_status.get(value, 0)) for value, label in Recommendation.Status.choices]
    total = sum(n for _label, n in counts)
    query = _list_query(request)
    selected = {int(v) for v in request.POST.getlist("selected") if v.isdigit()} if bulk_form.is_bound else set()
    return render(
        request,
        "tracker/recommendation_list.html",
        {
            "filter": filterset,
            "page": page,
            "links": _links(request, page, "cursor"),
            "total": total,
            "more_than": f"{SEARCH_COUNT_LIMIT:,}" if searched and total > SEARCH_COUNT_LIMIT else None,
            "counts": counts,
            "overdue_count": overdue_count,
            "sort": sort,
            "sorts": staff_forms.SORT_LABELS,
            "today": timezone.localdate(),
            "sees_all": sees_all,
            "bulk": bulk_form if offered else None,
            "selectable": selectable,
            "selected": selected,
            "rag_meanings": staff_forms.RAG_MEANINGS,
            "saved_filters": SavedFilter.objects.filter(
                user=request.user, organisation_id=request.user.organisation_id
            ),
            "save_form": staff_forms.SaveFilterForm(),
            "share_url": request.build_absolute_uri(
                reverse("tracker:recommendations") + (f"?{query}" if query else "")
            ),
            "query": query,
            "group": inbox.GROUPS.get(request.GET.get("group", "")),
            "form": bulk_form if bulk_form.is_bound else None,  # the page title says "Error:" when it has errors
        },
    )


FINDINGS_SHOWN = 20  # of each kind on the inspection page; each kind's own pages show FINDINGS_PAGE at a time
FINDINGS_PAGE = 50


@dataclass(frozen=True)
class FindingGroup:
    kind: str
    label: str
    count: int
    items: list[tuple[Finding, Recommendation | None]]


@staff_page
def inspection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The inspection: its judgements, deadlines, strengths and findings by kind.

    A report may have thousands of findings: each kind shows its count and first few (by reference),
    and a link to that kind's own pages, FINDINGS_PAGE at a time after a reference (``?kind=&after=``,
    read from the index on kind, inspection and reference). A fixed number of queries at any size.
    """
    inspection = get_object_or_404(permissions.visible_inspections(request.user), pk=pk)
    findings = inspection.findings.order_by()
    counts = dict(findings.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    only = request.GET.get("kind", "")
    if only not in counts:
        only = ""
    after = request.GET.get("after", "") if only else ""
    # The page of one kind, or the first few of each (one subquery per kind, read from the index), then
    # read with their recommendation, owner and quotations.
    if only:
        wanted = Q(pk__in=findings.filter(kind=only, reference__gt=after).order_by("reference")[: FINDINGS_PAGE + 1])
    else:
        firsts = [findings.filter(kind=kind).order_by("reference")[:FINDINGS_SHOWN] for kind in counts]
        wanted = reduce(operator.or_, (Q(pk__in=first.values("pk")) for first in firsts), Q(pk__in=[]))
    shown = list(
        Finding.objects.filter(wanted)
        .select_related("recommendation__owner")
        .prefetch_related(sources.quotations_prefetch())
        .order_by("reference")
    )
    more = bool(only) and len(shown) > FINDINGS_PAGE
    shown = shown[:FINDINGS_PAGE] if only else shown
    ids = [finding.pk for finding in shown]
    visible = set(
        permissions.visible_recommendations(request.user).filter(finding__in=ids).values_list("pk", flat=True)
    )
    by_kind: dict[str, list] = {value: [] for value, _ in Finding.Kind.choices}
    for finding in shown:
        rec = getattr(finding, "recommendation", None)
        by_kind[finding.kind].append((finding, rec if rec is not None and rec.pk in visible else None))
    # Strengths are what to sustain, shown on their own; the groups are what demands action.
    groups = [
        FindingGroup(value, label, counts[value], by_kind[value])
        for value, label in Finding.Kind.choices
        if counts.get(value) and (not only or value == only)
    ]
    strengths = next((group for group in groups if group.kind == Finding.Kind.STRENGTH), None)
    today = timezone.localdate()
    return render(
        request,
        "tracker/inspection.html",
        {
            "inspection": inspection,
            "judgements": inspection.judgements.select_related("source"),
            "groups": [group for group in groups if group.kind != Finding.Kind.STRENGTH],
            "strengths": strengths,
            "only": only,
            "next_after": by_kind[only][-1][0].reference if more else None,
            "page_size": FINDINGS_PAGE,
            "deadlines": [(d, d.status(today)) for d in deadlines.for_inspection(inspection)],
            "may_set_dates": bool(policy.decide_inspection_dates(request.user, inspection)),
        },
    )


@staff_page
def inspection_dates(request: HttpRequest, pk: int) -> HttpResponse:
    """A governance lead sets, moves or clears the inspection's action plan and revisit dates."""
    inspection = get_object_or_404(permissions.visible_inspections(request.user).select_related("organisation"), pk=pk)
    decision = policy.decide_inspection_dates(request.user, inspection)
    context = {"inspection": inspection, "refused": ""}
    if not decision:
        if decision.by_role:
            raise permissions.NotPermitted(decision.reason)
        context["refused"] = decision.reason
        return render(request, "tracker/inspection_dates.html", context, status=409)
    form = staff_forms.InspectionDatesForm(request.POST or None, inspection=inspection)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            workflow.set_inspection_dates(
                inspection,
                by=request.user,
                action_plan_due=data["action_plan_due"],
                revisit_due=data["revisit_due"],
                reason=data["reason"],
                expected=data["shown"],
            )
        except workflow.StaleRecommendation as exc:
            inspection.refresh_from_db()
            fresh = request.POST.copy()
            fresh["shown"] = form.shown_value(inspection)
            form = staff_forms.InspectionDatesForm(fresh, inspection=inspection)
            form.is_valid()
            form.add_error(None, str(exc))
        except workflow.WorkflowError as exc:
            form.add_workflow_error(str(exc))
        else:
            messages.success(request, "The inspection's dates have been saved.")
            return redirect(reverse("tracker:inspection", args=[inspection.pk]) + "#deadlines")
    context["form"] = form
    return render(request, "tracker/inspection_dates.html", context)


@dataclass(frozen=True)
class ActionLink:
    action: Action
    url_name: str
    label: str


# The actions the recommendation page offers as links to their own pages, in the order shown. Each is
# shown exactly when the policy allows it; the assurance decision page serves both close and return.
ACTION_LINKS = (
    ActionLink(Action.UPDATE, "tracker:update", "Post a progress update"),
    ActionLink(Action.ADD_EVIDENCE, "tracker:add-evidence", "Add evidence"),
    ActionLink(Action.SUBMIT, "tracker:submit", "Submit for assurance"),
    ActionLink(Action.CLOSE, "tracker:decide", "Accept and close"),
    ActionLink(Action.RETURN, "tracker:decide", "Return to the owner"),
    ActionLink(Action.REOPEN, "tracker:reopen", "Reopen"),
    ActionLink(Action.REASSIGN, "tracker:reassign", "Change owner"),
    ActionLink(Action.CHANGE_TARGET_DATE, "tracker:target-date", "Change target date"),
    ActionLink(Action.SET_RAG, "tracker:rag", "Set RAG rating"),
)
_DECISION_FOR = {Action.CLOSE: "close", Action.RETURN: "reject"}
# Evidence verdicts are given from each pending item's own "Review" link, not from this list.
REVIEW_EVIDENCE_LABEL = "Give evidence a verdict"


@dataclass(frozen=True)
class Closure:
    """How a recommendation stopped being open: the event that did it, and what it rested on."""

    event: RecommendationEvent | None
    accepted_evidence: list[Evidence]


def _closure(rec: Recommendation, evidence: list[Evidence] | None = None) -> Closure | None:
    if rec.is_open:
        return None
    ending = RecommendationEvent.Action.CLOSED if rec.status == Recommendation.Status.CLOSED else None
    ending = ending or RecommendationEvent.Action.SUPERSEDED
    event = rec.events.filter(action=ending).select_related("actor").order_by("-at", "-pk").first()
    if evidence is None:
        evidence = list(rec.evidence.select_related("reviewed_by"))
    accepted = [item for item in evidence if item.verdict == Evidence.Verdict.ACCEPTED]
    return Closure(event, accepted if rec.status == Recommendation.Status.CLOSED else [])


def _review_state(rec: Recommendation, today: dt.date) -> dict:
    """What the summary says about the next review and the target date, as the model decides them."""
    return {"state": rec.review_state(today), "target_missed": rec.target_missed(today)}


def _summary(rec: Recommendation, evidence: list[Evidence] | None = None) -> dict:
    """Context for includes/summary.html: a live review date while open, the closure once not."""
    today = timezone.localdate()
    return {"closure": _closure(rec, evidence), "review": _review_state(rec, today), "today": today}


@dataclass(frozen=True)
class Fix:
    """One way to meet a checklist condition: a sentence, a link, or both."""

    text: str = ""
    label: str = ""
    url: str = ""
    hidden: str = ""  # read to screen readers after the link's label, so that it makes sense alone


@dataclass(frozen=True)
class ChecklistRow:
    condition: policy.Condition
    fixes: list[Fix]

    @property
    def explanation(self) -> str:
        return self.condition.done if self.condition.met else self.condition.reason


def _short(item: Evidence) -> str:
    return f"“{item.description[:60]}{'…' if len(item.description) > 60 else ''}”"


def _fixes(
    key: str, rec: Recommendation, decided: dict[Action, Decision], evidence: list[Evidence], facts: policy.Facts
) -> list[Fix]:
    """Where the user can fix an unmet condition: links only to what the policy allows them now."""
    Verdict = Evidence.Verdict
    add_url = reverse("tracker:add-evidence", args=[rec.pk])
    may_add = decided[Action.ADD_EVIDENCE].allowed
    pending = [item for item in evidence if item.verdict == Verdict.PENDING]
    rejected = [item for item in evidence if item.verdict == Verdict.REJECTED]

    def replace_rejected() -> list[Fix]:
        return [
            Fix(
                f"Evidence {_short(item)} was rejected: {item.rejection_reason}",
                "Add new evidence" if may_add else "",
                add_url if may_add else "",
                f" to replace {_short(item)}",
            )
            for item in rejected[:5]
        ]

    if key == "in_progress":
        allowed = decided[Action.UPDATE].allowed
        return (
            [Fix("", "Start the work with a progress update", reverse("tracker:update", args=[rec.pk]))]
            if allowed
            else []
        )
    if key == "evidence":
        return replace_rejected() or ([Fix("", "Add a piece of evidence", add_url)] if may_add else [])
    if key == "accepted":
        if pending:
            return []  # the "every piece has a verdict" row names them
        return replace_rejected() or ([Fix("", "Add a piece of evidence", add_url)] if may_add else [])
    if key in ("outcome_evidence", "outcome_accepted"):
        waiting = any(item.category == Evidence.Category.OUTCOME for item in pending)
        if may_add and not waiting:
            return [Fix("", "Add outcome evidence", f"{add_url}?category={Evidence.Category.OUTCOME}")]
        return []
    if key == "awaiting_assurance":
        if decided[Action.SUBMIT].allowed:
            return [
                Fix("Everything submitting needs is there.", "Submit it now", reverse("tracker:submit", args=[rec.pk]))
            ]
        if decided[Action.SUBMIT].by_role or not rec.is_open:
            return []
        # The owner's way there: what submitting still needs, each with its own fix.
        fixes = []
        for condition in policy.submit_conditions(rec, facts):
            if not condition.met:
                fixes.append(Fix(condition.reason))
                fixes.extend(_fixes(condition.key, rec, decided, evidence, facts))
        return fixes
    if key == "reviewed":
        if decided[Action.REVIEW_EVIDENCE].allowed:
            return [
                Fix(
                    f"Evidence {_short(item)} awaits your verdict.",
                    "Give it a verdict",
                    reverse("tracker:review-evidence", args=[rec.pk, item.pk]),
                    f": {_short(item)}",
                )
                for item in pending
            ]
        return [Fix(f"Evidence {_short(item)} awaits a verdict from an assurance reviewer.") for item in pending]
    return []


def _checklist(
    conditions: list[policy.Condition],
    rec: Recommendation,
    decided: dict[Action, Decision],
    evidence: list[Evidence],
    facts: policy.Facts,
) -> list[ChecklistRow]:
    return [
        ChecklistRow(condition, [] if condition.met else _fixes(condition.key, rec, decided, evidence, facts))
        for condition in conditions
    ]


def _closing_checklist(
    user,
    rec: Recommendation,
    evidence: list[Evidence] | None = None,
    facts: policy.Facts | None = None,
    decided: dict[Action, Decision] | None = None,
) -> dict:
    """Context for includes/checklist.html: what closing needs, from the rule the close guard uses."""
    if not rec.is_open:
        return {}
    facts = facts or policy.Facts(rec, user)
    decided = decided or policy.decisions(user, rec, facts)
    if evidence is None:
        evidence = list(rec.evidence.select_related("added_by", "reviewed_by"))
    rows = _checklist(policy.closing_checklist(user, rec, facts), rec, decided, evidence, facts)
    return {"checklist": rows, "checklist_title": "What closing needs", "checklist_id": "closing-checklist"}


def _submit_checklist(user, rec: Recommendation) -> dict:
    """Context for includes/checklist.html: what submitting needs, from the rule the submit guard uses."""
    facts = policy.Facts(rec, user)
    decided = policy.decisions(user, rec, facts)
    evidence = list(rec.evidence.select_related("added_by", "reviewed_by"))
    rows = _checklist(policy.submit_checklist(user, rec, facts), rec, decided, evidence, facts)
    return {"checklist": rows, "checklist_title": "What submitting needs", "checklist_id": "submit-checklist"}


@staff_page
def recommendation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rec = _recommendation(request, pk)
    facts = policy.Facts(rec, request.user)
    decided = policy.decisions(request.user, rec, facts)
    links, not_now = [], []
    for link in ACTION_LINKS:
        decision = decided[link.action]
        if decision.allowed:
            url = reverse(link.url_name, args=[rec.pk])
            if link.action in _DECISION_FOR:
                url += f"?decision={_DECISION_FOR[link.action]}"
            links.append((link, url))
        elif not decision.by_role:
            # They could by role, but not now: say why, so nobody is left guessing.
            not_now.append((link.label, decision.reason))
    review = decided[Action.REVIEW_EVIDENCE]
    if not review.allowed and not review.by_role:
        not_now.append((REVIEW_EVIDENCE_LABEL, review.reason))
    evidence = list(rec.evidence.select_related("added_by", "reviewed_by"))
    from tracker.plan_views import page_context as plan_context  # issue 16; imported here: it imports this module

    return render(
        request,
        "tracker/recommendation.html",
        {
            **plan_context(request.user, rec, decided),
            "recommendation": rec,
            "finding": rec.finding,
            "themes": rec.finding.themes.all(),
            "events": rec.events.select_related("actor"),
            "updates": rec.updates.select_related("author"),
            "evidence": evidence,
            "links": links,
            "not_now": not_now,
            "may_review_evidence": review.allowed,
            **_summary(rec, evidence),
            **_closing_checklist(request.user, rec, evidence, facts, decided),
        },
    )


@staff_page
@require_http_methods(["GET", "HEAD"])
def evidence_download(request: HttpRequest, pk: int) -> FileResponse:
    evidence = get_object_or_404(
        permissions.visible_evidence(request.user).select_related("recommendation__finding"),
        pk=pk,
        kind=Evidence.Kind.FILE,
    )
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError:
        raise Http404("The evidence file is missing from storage.") from None
    AccessLog.objects.create(
        user=request.user,
        action=AccessLog.Action.EVIDENCE_DOWNLOAD,
        object_repr=str(evidence)[:300],
        detail={
            "evidence": evidence.pk,
            "recommendation": evidence.recommendation_id,
            "filename": evidence.original_filename,
        },
    )
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=evidence.original_filename or f"evidence-{evidence.pk}",
        content_type=evidence.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# Changing: one page per workflow action, all of the same shape.


@dataclass(frozen=True)
class Step:
    actions: tuple[Action, ...]  # the page opens when the policy allows any of these now
    form_class: type[staff_forms.VersionedForm]
    title: str
    button: str
    perform: Callable[[HttpRequest, Recommendation, dict], str]  # does the change, returns the success message
    intro: str = ""
    warning: bool = False
    # For a page serving several actions: the form's choice value for each, offered only when allowed.
    choices: tuple[tuple[Action, str], ...] = ()
    # More for the page and its "not now" refusal alike (the checklist of what the action needs).
    context: Callable[[HttpRequest, Recommendation], dict] | None = None
    fields_template: str = ""  # the form's fields laid out by hand, instead of one after another
    template: str = "tracker/action.html"


def _require(request: HttpRequest, rec: Recommendation, actions: tuple[Action, ...]) -> dict[Action, Decision]:
    """Ask the policy, on GET and POST alike. Refused by role: ``NotPermitted`` (the 403 page). Refused by
    state: ``WorkflowError`` (the "not now" page). A page serving several actions opens if any may happen."""
    if len(actions) == 1:
        policy.require(request.user, actions[0], rec)
        return {actions[0]: Decision(actions[0], True)}
    facts = policy.Facts(rec, request.user)
    decided = {action: policy.decide(request.user, rec, action, facts) for action in actions}
    if not any(decided.values()):
        by_state = [d for d in decided.values() if not d.by_role]
        (by_state or list(decided.values()))[0].raise_if_refused()
    return decided


def _not_now(
    request: HttpRequest, rec: Recommendation, title: str, reason: str, extra: dict | None = None
) -> HttpResponse:
    """A state refusal: a page that says why, with the way back, instead of a form that cannot succeed."""
    stale = request.method == "POST" and request.POST.get("version") not in (None, str(rec.version))
    context = {
        "recommendation": rec,
        "title": title,
        "reason": reason,
        "stale": stale,
        **_summary(rec),
        **(extra or {}),
    }
    return render(request, "tracker/not_now.html", context, status=409)


def _workflow_page(request: HttpRequest, pk: int, step: Step, **form_kwargs) -> HttpResponse:
    rec = _recommendation(request, pk)
    try:
        decided = _require(request, rec, step.actions)
    except workflow.WorkflowError as exc:
        return _not_now(request, rec, step.title, str(exc), step.context(request, rec) if step.context else None)
    if step.choices:
        form_kwargs["refused"] = {
            value: decided[action].reason for action, value in step.choices if not decided[action]
        }
    if request.method == "POST":
        form = step.form_class(request.POST, request.FILES, recommendation=rec, **form_kwargs)
        if form.is_valid():
            try:
                message = step.perform(request, rec, form)
            except workflow.StaleRecommendation as exc:
                # Keep what the user typed, but against the version they can now see.
                rec.refresh_from_db()
                data = request.POST.copy()
                data["version"] = rec.version
                form = step.form_class(data, recommendation=rec, **form_kwargs)
                form.is_valid()
                form.add_error(None, str(exc))
            except workflow.WorkflowError as exc:
                form.add_workflow_error(str(exc))
            else:
                messages.success(request, message)
                return redirect(rec)
    else:
        initial = {}
        if request.GET.get("decision") in {value for _, value in step.choices}:
            initial["decision"] = request.GET["decision"]  # the link chosen on the recommendation page
        form = step.form_class(recommendation=rec, initial=initial, **form_kwargs)
    context = {"recommendation": rec, "form": form, "step": step, **_summary(rec)}
    if step.context:
        context.update(step.context(request, rec))
    context["rag_meanings"] = staff_forms.RAG_MEANINGS
    return render(request, step.template, context)


def _set_rag(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.set_rag(rec, by=request.user, rag=data["rag"], reason=data["reason"], expected_version=data["version"])
    return f"The RAG rating is now {rec.get_rag_display().lower()}."


def _post_update(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.post_update(
        rec,
        by=request.user,
        narrative=data["narrative"],
        rag=data["rag"] or None,
        review_completed=data["review_completed"],
        expected_version=data["version"],
    )
    if not data.get("submit_for_assurance"):
        return "Your update has been saved."
    try:
        # The update bumped the version; rec was refreshed by the workflow, so this is the version just written.
        workflow.submit_for_assurance(rec, by=request.user, expected_version=rec.version)
    except workflow.WorkflowError as exc:
        messages.warning(request, f"Your update has been saved, but it was not submitted for assurance: {exc}")
        return "Your update has been saved."
    return "Your update has been saved and the recommendation submitted for assurance."


def _add_evidence(request, rec, form) -> str:
    data = form.cleaned_data
    checked = form.checked
    workflow.add_evidence(
        rec,
        by=request.user,
        kind=data["kind"],
        category=data["category"],
        description=data["description"],
        upload=checked,
        link=data["link"],
        note=data["note"],
        expected_version=data["version"],
    )
    return "Your evidence has been added."


def _submit(request, rec, form) -> str:
    workflow.submit_for_assurance(rec, by=request.user, expected_version=form.cleaned_data["version"])
    return "Submitted for assurance. An assurance reviewer will check the evidence."


def _decide(request, rec, form) -> str:
    data = form.cleaned_data
    if data["decision"] == form.CLOSE:
        workflow.close(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        return "The recommendation has been accepted and closed."
    workflow.reject(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
    return "The submission has been rejected and the recommendation is back in progress."


def _reopen(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.reopen(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
    return "The recommendation has been reopened."


def _reassign(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.assign_owner(
        rec, by=request.user, owner=data["owner"], reason=data["reason"], expected_version=data["version"]
    )
    return f"The owner is now {rec.owner or 'nobody'}."


def _change_target_date(request, rec, form) -> str:
    data = form.cleaned_data
    if form.removing:
        workflow.remove_target_date(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        return "The target date has been removed."
    workflow.change_target_date(
        rec, by=request.user, target_date=data["target_date"], reason=data["reason"], expected_version=data["version"]
    )
    return f"The target date is now {rec.target_date:%-d %B %Y}."


UPDATE = Step((Action.UPDATE,), staff_forms.ProgressUpdateForm, "Post a progress update", "Save update", _post_update)
ADD_EVIDENCE = Step(
    (Action.ADD_EVIDENCE,),
    staff_forms.EvidenceForm,
    "Add evidence",
    "Add evidence",
    _add_evidence,
    intro="Evidence is a file, a link or a note. Say whether it shows an output (something delivered) "
    "or an outcome (a result for children).",
    fields_template="tracker/includes/evidence_fields.html",
)
SUBMIT = Step(
    (Action.SUBMIT,),
    staff_forms.SubmitForm,
    "Submit for assurance",
    "Submit for assurance",
    _submit,
    intro="An assurance reviewer who does not own this recommendation will check its evidence and decide "
    "whether to close it. You cannot post updates that change its status while it awaits assurance.",
    context=lambda request, rec: _submit_checklist(request.user, rec),
)
DECIDE = Step(
    (Action.CLOSE, Action.RETURN),
    staff_forms.AssuranceDecisionForm,
    "Assurance decision",
    "Record decision",
    _decide,
    intro="Every piece of evidence needs a verdict before the recommendation can be closed.",
    choices=tuple(_DECISION_FOR.items()),
    context=lambda request, rec: _closing_checklist(request.user, rec),
)
REOPEN = Step((Action.REOPEN,), staff_forms.ReopenForm, "Reopen recommendation", "Reopen", _reopen, warning=True)
REASSIGN = Step((Action.REASSIGN,), staff_forms.ReassignForm, "Change owner", "Change owner", _reassign)
TARGET_DATE = Step(
    (Action.CHANGE_TARGET_DATE,),
    staff_forms.TargetDateForm,
    "Change target date",
    "Change target date",
    _change_target_date,
)

SET_RAG = Step(
    (Action.SET_RAG,),
    staff_forms.SetRagForm,
    "Set RAG rating",
    "Set RAG rating",
    _set_rag,
    intro="The rating says how delivery stands; it does not change the status. The reason is kept on the timeline.",
    template="tracker/set_rag.html",
)


def _may_submit_with_update(user, rec: Recommendation) -> bool:
    """The update page's "also submit for assurance": the submit rule as it will stand once this update
    has started the work (an update moves a recommendation that is not started to in progress)."""
    if rec.status not in (Recommendation.Status.NOT_STARTED, Recommendation.Status.IN_PROGRESS):
        return False
    started = copy.copy(rec)
    started.status = Recommendation.Status.IN_PROGRESS
    return policy.decide(user, started, Action.SUBMIT).allowed


@staff_page
def post_update(request: HttpRequest, pk: int) -> HttpResponse:
    rec = _recommendation(request, pk)
    return _workflow_page(request, pk, UPDATE, can_submit=_may_submit_with_update(request.user, rec))


@staff_page
def add_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    # Reading FILES parses the body; tracker.upload_handlers then knows each file name as it was sent.
    sent_names = getattr(request, "raw_upload_names", []) if request.FILES is not None else []
    # "Add outcome evidence" links from the checklists choose the category for you.
    category = request.GET.get("category")
    return _workflow_page(request, pk, ADD_EVIDENCE, raw_upload_names=sent_names, category=category)


@staff_page
def submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, SUBMIT)


@staff_page
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, DECIDE)


@staff_page
def reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, REOPEN)


@staff_page
def reassign(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, REASSIGN)


@staff_page
def change_target_date(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, TARGET_DATE)


@staff_page
def set_rag(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, SET_RAG)


@staff_page
def review_evidence(request: HttpRequest, pk: int, evidence_pk: int) -> HttpResponse:
    rec = _recommendation(request, pk)
    # Only evidence on this recommendation: a forged id from elsewhere is simply not found.
    item = get_object_or_404(permissions.visible_evidence(request.user).filter(recommendation=rec), pk=evidence_pk)
    title = "Review evidence"
    try:
        policy.require(request.user, Action.REVIEW_EVIDENCE, rec)
    except workflow.WorkflowError as exc:
        return _not_now(request, rec, title, str(exc))
    if item.verdict != Evidence.Verdict.PENDING:
        return _not_now(request, rec, title, f"This evidence has already been {item.get_verdict_display().lower()}.")
    form = staff_forms.EvidenceReviewForm(request.POST or None, recommendation=rec)
    if request.method == "POST" and form.is_valid():
        accept = form.cleaned_data["decision"] == form.ACCEPT
        try:
            workflow.review_evidence(
                item,
                by=request.user,
                accept=accept,
                reason=form.cleaned_data["reason"],
                expected_version=form.cleaned_data["version"],
            )
        except workflow.WorkflowError as exc:
            form.add_workflow_error(str(exc))
        else:
            messages.success(
                request, "The evidence has been accepted." if accept else "The evidence has been rejected."
            )
            return redirect(rec)
    return render(request, "tracker/review_evidence.html", {"recommendation": rec, "item": item, "form": form})

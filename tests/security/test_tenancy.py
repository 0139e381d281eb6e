"""Tenancy, by enumeration: nothing of organisation A reaches anyone of organisation B, through any URL.

The test walks Django's URL resolver (the admin, the staff pages, the API and the sign-in pages) and
fills every pattern that takes an object with the id of organisation A's object of that kind. Every
role of organisation B (and a superuser who belongs to B, and an anonymous visitor) requests each one
with GET and POST: the answer must be not found, a refusal, or the sign-in page, and no answer may
carry A's marker. Pages that take no object (lists, dashboards, exports, filters' choices, the
admin's autocomplete) are requested too and must not carry the marker either. Afterwards A's data
must be exactly as it was.

A pattern the test does not know how to fill fails it, so a new URL is covered without anyone
remembering to add it; the few patterns that take an argument but no object are listed in NO_OBJECT,
each with the reason. The platform operator (a superuser of no organisation) sees every organisation
by design: asserted separately.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from tests.factories import (
    FindingFactory,
    InspectionFactory,
    OrganisationFactory,
    RecommendationFactory,
    UserFactory,
)
from tests.web.conftest import PDF_BYTES
from tracker import calendar_feed, workflow
from tracker.models import (
    AccessLog,
    Evidence,
    ExportJob,
    Finding,
    ImportJob,
    Inspection,
    Judgement,
    MeasureDataPoint,
    NotificationPreference,
    Organisation,
    OutcomeMeasure,
    PlanAction,
    ProgressUpdate,
    Quotation,
    Recommendation,
    RecommendationEvent,
    Reminder,
    SavedFilter,
    Source,
    Theme,
    User,
)
from tracker.permissions import Role, reminder_of_organisation
from tracker.storage import ExportStorage
from tracker.uploads import check_upload

MARKER = "zz-alpha-secret"  # in every name, title, quote, email and note of organisation A
LOUD = MARKER.upper()

# Patterns (by name, or by route when unnamed) that take an argument but no organisation's object,
# and why each needs none.
NO_OBJECT = {
    "admin/(?P<url>.*)$": "the admin's catch-all: redirects or 404s any unknown admin address",
    "admin:app_list": "an app's list of models, no rows (requested below, for each app)",
    "api/^(?P<unmatched>.*)$": "the API's catch-all: a JSON 404 for any unknown API address",
    "calendar/<str:token>.ics": "the feed's unguessable token is the credential; a wrong token is 404 (requested)",
    "accounts/reset/<uidb64>/<token>/": "the emailed token is the credential; a wrong one shows 'link invalid' (requested)",
}

# Models that belong to no organisation: there is no A object to try. Who may see and change them is
# tested in tests/core/test_admin.py (themes and roles read-only to leads, the schedule operator-only).
SHARED = {
    Theme: "themes are shared by every organisation's dashboard",
    Group: "the four roles are shared by every organisation",
    PeriodicTask: "the reminder schedule is the platform operator's",
    CrontabSchedule: "the reminder schedule is the platform operator's",
    IntervalSchedule: "the reminder schedule is the platform operator's",
    ClockedSchedule: "the reminder schedule is the platform operator's",
    SolarSchedule: "the reminder schedule is the platform operator's",
}

# The staff pages' object arguments: which model the number names, by where it appears.
# An export job (a worker-made Excel file or board-pack PDF) is A's lead's own: no one else's, even in A.
STAFF_PK = {
    "inspections/": Inspection,
    "recommendations/": Recommendation,
    "evidence/": Evidence,
    "exports/": ExportJob,
    "imports/": ImportJob,  # an import job (the worker's run of an uploaded file) likewise A's lead's own
    # Issue 16: an action's and a measure's own pages (its owner or supplier may not see the recommendation).
    "plan-actions/": PlanAction,
    "measures/": OutcomeMeasure,
}
# The API's resources.
API_RESOURCES = {
    "organisations": Organisation,
    "inspections": Inspection,
    "findings": Finding,
    "recommendations": Recommendation,
    "updates": ProgressUpdate,
    "evidence": Evidence,
    "reminders": Reminder,
    "plan-actions": PlanAction,
    "measures": OutcomeMeasure,
    "measure-data": MeasureDataPoint,
}
# Admin pages that are "not found" even for A's own lead, so the control below does not expect them.
NOT_FOUND_EVEN_AT_HOME = re.compile(
    r"/admin/tracker/(recommendationevent|reminder|accesslog)/\d+/history/\d+/$"  # logs: no field history
)

B_ROLES = ["lead", "reviewer", "owner", "viewer", "superuser", "anonymous"]
REFUSED = {401, 403, 404, 405}
SIGN_IN = ("/admin/login/", "/accounts/login/")


@dataclass
class World:
    a: dict  # organisation A's objects by kind
    b: dict  # organisation B's objects by kind
    people: dict  # B's people by role, and A's lead as "a-lead"
    history_ids: dict = field(default_factory=dict)  # (model, pk) -> a history id of that object


# The data: built once for the module, inside a transaction rolled back at the end.


@pytest.fixture(scope="module")
def evidence_root(tmp_path_factory):
    return tmp_path_factory.mktemp("evidence")


@pytest.fixture(autouse=True)
def _private_dirs(settings, evidence_root):
    """Overrides the suite's: the module's evidence files live in one folder for all its tests."""
    settings.EVIDENCE_ROOT = evidence_root
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, evidence_root):
    settings = {
        "EVIDENCE_ROOT": evidence_root,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    }
    with django_db_blocker.unblock(), override_settings(**settings), transaction.atomic():
        call_command("loaddata", "groups", verbosity=0)
        b, b_people = _organisation("bravo", "Bravo Constabulary", "b")
        a, a_people = _organisation(MARKER, f"{LOUD} Police", MARKER)
        people = {**b_people, "a-lead": a_people["lead"]}
        people["superuser"] = UserFactory(
            username="b-superuser", organisation=b["organisation"], is_staff=True, is_superuser=True
        )
        world = World(a=a, b=b, people=people)
        for obj in [*a.values(), *b.values()]:
            if hasattr(obj, "history"):
                world.history_ids[(type(obj), obj.pk)] = obj.history.latest("history_date").history_id
        yield world
        transaction.set_rollback(True)


def _organisation(slug: str, name: str, prefix: str) -> tuple[dict, dict]:
    """One organisation with a person in each role and one of every kind of record, all named with
    ``prefix`` (organisation A's prefix is the marker)."""
    loud = prefix.upper()
    organisation = OrganisationFactory(slug=slug, name=name)
    people = {
        role_name: UserFactory(
            username=f"{prefix}-{role_name}",
            first_name=f"{loud}",
            last_name=f"{role_name.title()}",
            email=f"{prefix}-{role_name}@{prefix}.example.org",
            organisation=organisation,
            roles=[role],
            is_staff=True,
        )
        for role_name, role in (
            ("lead", Role.GOVERNANCE_LEAD),
            ("reviewer", Role.REVIEWER),
            ("owner", Role.OWNER),
            ("viewer", Role.VIEWER),
        )
    }
    inspection = InspectionFactory(organisation=organisation, title=f"{loud} inspection", slug=f"{prefix}-inspection")
    judgement = Judgement.objects.create(inspection=inspection, area=f"{loud} area", grade="good")
    finding = FindingFactory(
        inspection=inspection,
        reference=f"{loud[:15]}-1",
        title=f"{loud} finding",
        summary=f"{loud} summary",
        quote=f"{loud} quote",
    )
    source = Source.objects.create(
        inspection=inspection, key=f"{prefix}-source", title=f"{loud} source", publisher=loud, kind="newspaper_report"
    )
    Quotation.objects.create(finding=finding, source=source, position=2, text=f"{loud} words", location=loud)
    Judgement.objects.filter(pk=judgement.pk).update(source=source)
    rec = RecommendationFactory(finding=finding, title=f"{loud} recommendation", outcome_measure=f"{loud} outcome")
    # A finding with no recommendation yet: the admin offers these when a lead adds one.
    FindingFactory(inspection=inspection, reference=f"{loud[:15]}-2", title=f"{loud} finding to plan")
    lead, owner = people["lead"], people["owner"]
    workflow.assign_owner(rec, by=lead, owner=owner, reason=f"{loud} reason")
    workflow.change_target_date(rec, by=lead, target_date=timezone.localdate().replace(year=2030))
    update = workflow.post_update(rec, by=owner, narrative=f"{loud} narrative", rag="amber")
    upload = check_upload(SimpleUploadedFile(f"{prefix}.pdf", PDF_BYTES, content_type="application/pdf"))
    evidence = workflow.add_evidence(
        rec, by=owner, kind="file", category="outcome", description=f"{loud} file", upload=upload
    )
    workflow.add_evidence(rec, by=owner, kind="note", category="output", description=f"{loud} note", note=loud)
    rec.refresh_from_db()
    reminder = Reminder.objects.create(
        recommendation=rec, recipient=owner, stage="overdue", review_due=rec.next_review_due, last_error=loud
    )
    log = AccessLog.objects.create(user=lead, action=AccessLog.Action.EXPORT, object_repr=f"{loud} export")
    calendar_feed.issue_token(owner)
    NotificationPreference.objects.create(user=owner, kind="returned", delivery="daily")
    export = ExportJob.objects.create(
        user=lead,
        organisation=organisation,
        kind="xlsx",
        key=f"{prefix}-key",
        state="ready",
        total=1,
        filename=f"{prefix}.xlsx",
        file=ExportStorage().save(f"{prefix}-export", ContentFile(loud.encode())),
    )
    import_job = ImportJob.objects.create(
        user=lead,
        organisation=organisation,
        filename=f"{prefix}.csv",
        state="failed",
        problems=[f"row 2, column Title: {loud} problem"],
        problem_count=1,
    )
    # Issue 16: a plan action, an outcome measure and a data point, each named with the marker.
    plan_action = workflow.add_plan_action(
        rec, by=lead, description=f"{loud} action", owner=owner, due_date=timezone.localdate().replace(year=2030)
    )
    measure = workflow.add_measure(
        rec,
        by=lead,
        name=f"{loud} measure",
        definition=f"{loud} definition",
        unit="%",
        direction="higher",
        baseline_value=50,
        baseline_period=timezone.localdate().replace(year=2025, day=1),
        target_value=90,
        target_date=timezone.localdate().replace(year=2030),
        frequency="monthly",
        supplier=owner,
    )
    datapoint = workflow.enter_measure_data(
        measure, by=owner, period=timezone.localdate().replace(year=2025, day=1), value=70, note=f"{loud} note"
    )
    # The ledger's other shapes (tracker.ledger_items): rows with no recommendation, scoped by their item.
    ledger_rows = {
        "reminder:action": Reminder.objects.create(
            plan_action=plan_action, recipient=owner, stage="action_due_soon", due=plan_action.due_date, last_error=loud
        ),
        "reminder:measure": Reminder.objects.create(
            measure=measure, recipient=owner, stage="measure_data_due", due=measure.baseline_period, last_error=loud
        ),
        "reminder:deadline": Reminder.objects.create(
            inspection=inspection,
            deadline="revisit",
            recipient=lead,
            stage="deadline_due",
            due=timezone.localdate(),
            last_error=loud,
        ),
    }
    rec.refresh_from_db()
    objects = {
        "organisation": organisation,
        "planaction": plan_action,
        "measure": measure,
        "datapoint": datapoint,
        "inspection": inspection,
        "judgement": judgement,
        "source": source,
        "finding": finding,
        "recommendation": rec,
        "update": update,
        "evidence": evidence,
        "event": rec.events.order_by("pk").first(),
        "reminder": reminder,
        **ledger_rows,
        "accesslog": log,
        "export": export,
        "import": import_job,
        **{f"user:{role}": person for role, person in people.items()},
    }
    return objects, people


def _shapes(objects: dict, obj) -> list:
    """A reminder of every shape (a review, a plan action, a measure, a deadline); any other object alone."""
    if isinstance(obj, Reminder):
        return [each for each in objects.values() if isinstance(each, Reminder)]
    return [obj]


def _object(objects: dict, model: type):
    for obj in objects.values():
        if type(obj) is model:
            return obj
    return None


# Walking the URL resolver.


@dataclass
class Pattern:
    route: str  # the patterns' text joined, e.g. "admin/tracker/user/<id>/password/"
    name: str | None  # with its namespace, e.g. "admin:auth_user_password_change"
    kwargs: list[str]
    positional: int


def _arguments(pattern) -> tuple[list[str], int]:
    if isinstance(pattern.pattern, RoutePattern):
        return list(pattern.pattern.converters), 0
    regex = pattern.pattern.regex
    return list(regex.groupindex), regex.groups - len(regex.groupindex)


def walk(patterns=None, prefix="", namespace=None, kwargs=(), positional=0):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        names, count = _arguments(entry)
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
            yield from walk(entry.url_patterns, route, inner, [*kwargs, *names], positional + count)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield Pattern(route, name, [*kwargs, *names], positional + count)


@dataclass
class Case:
    url: str
    route: str
    post: bool = True  # also POSTed (forms and actions)
    target: object = None  # the object of A it tries


def _url(pattern: Pattern, *args, **kwargs) -> str:
    if pattern.name:
        return reverse(pattern.name, args=args or None, kwargs=kwargs or None)
    text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), pattern.route)
    return "/" + text


def fill(pattern: Pattern, world: World, side: str = "a") -> list[Case] | None:
    """The requests that try one organisation's objects (A's unless ``side`` is "b") through this
    pattern; None when the test cannot fill it."""
    objects = world.a if side == "a" else world.b
    if pattern.route in NO_OBJECT or pattern.name in NO_OBJECT:
        return []
    if not pattern.kwargs and not pattern.positional:
        return []  # a page of no object: requested by test_pages_of_no_object_show_nothing_of_a
    if pattern.name in ("admin:view_on_site", "admin-view-on-site"):
        return [
            Case(
                _url(pattern, content_type_id=ContentType.objects.get_for_model(obj).pk, object_id=obj.pk),
                pattern.route,
                target=obj,
            )
            for obj in objects.values()
        ]
    admin_model = re.match(r"^admin/(\w+)/(\w+)/", pattern.route)
    if admin_model:
        model = apps.get_model(admin_model.group(1), admin_model.group(2))
        if model in SHARED:
            return []
        obj = _object(objects, model)
        if obj is None:
            return None
        if pattern.positional == 2 and not pattern.kwargs:  # a past version: (object id, history id)
            history_id = world.history_ids.get((model, obj.pk), 1)
            return [Case(_url(pattern, obj.pk, history_id), pattern.route)]
        if pattern.kwargs in (["object_id"], ["id"]):
            return [
                Case(_url(pattern, **{pattern.kwargs[0]: each.pk}), pattern.route) for each in _shapes(objects, obj)
            ]
        return None
    if (
        pattern.name
        and pattern.name.startswith("tracker:")
        and set(pattern.kwargs) <= {"pk", "evidence_pk", "point_pk"}
    ):
        model = next((m for prefix, m in STAFF_PK.items() if pattern.route.startswith(prefix)), None)
        if model is None:
            return None
        kwargs = {"pk": _object(objects, model).pk}
        if "evidence_pk" in pattern.kwargs:
            kwargs["evidence_pk"] = objects["evidence"].pk
        if "point_pk" in pattern.kwargs:
            kwargs["point_pk"] = objects["datapoint"].pk
        return [Case(_url(pattern, **kwargs), pattern.route)]
    api = re.match(r"^api/\^(\w[\w-]*)/", pattern.route)
    if api and pattern.kwargs == ["pk"] and api.group(1) in API_RESOURCES:
        obj = _object(objects, API_RESOURCES[api.group(1)])
        return [Case(_url(pattern, pk=each.pk), pattern.route) for each in _shapes(objects, obj)]
    return None


def object_cases(world: World, side: str = "a") -> list[Case]:
    cases, unknown = [], []
    for pattern in walk():
        filled = fill(pattern, world, side)
        if filled is None:
            unknown.append(pattern.route)
        else:
            cases.extend(filled)
    assert not unknown, (
        "The tenancy test does not know how to fill these URL patterns with organisation A's objects; "
        f"teach fill() (or list a pattern of no object in NO_OBJECT, with the reason): {unknown}"
    )
    return cases


def pages_of_no_object(world: World) -> list[str]:
    urls = []
    for pattern in walk():
        if not pattern.kwargs and not pattern.positional:
            if pattern.route.startswith("accounts/logout"):
                continue  # signs the visitor out; shows nothing
            facets = "?_facets=1" if (pattern.name or "").endswith("_changelist") else ""  # filters with counts
            urls.append(_url(pattern) + facets)
    for app_label in ("tracker", "auth", "django_celery_beat"):
        urls.append(reverse("admin:app_list", args=[app_label]))
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        for relation in model._meta.get_fields():
            if relation.is_relation and relation.concrete and not relation.auto_created:
                urls.append(
                    reverse("admin:autocomplete")
                    + f"?app_label={info[0]}&model_name={info[1]}&field_name={relation.name}&term="
                )
    urls.append(reverse("tracker:calendar-feed", args=["not-a-real-token"]))
    uid = urlsafe_base64_encode(force_bytes(world.a["user:owner"].pk))
    urls.append(reverse("password_reset_confirm", args=[uid, "bad-token"]))
    return urls


# Requests and what is allowed to come back.


def _client(world: World, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world.people[role])
    return client


def _hostile(world: World) -> dict:
    """A form that would change A's object into B's hands if any door took it."""
    b = world.b
    version = world.a["recommendation"].version
    return {
        "title": "hacked",
        "name": "hacked",
        "slug": "hacked",
        "kind": "note",
        "email": "hacked@example.org",
        "username": "hacked",
        "narrative": "hacked",
        "reason": "hacked",
        "description": "hacked",
        "note": "hacked",
        "category": "output",
        "decision": "accept",
        "accept": "1",
        "owner": world.people["owner"].pk,
        "organisation": b["organisation"].pk,
        "inspection": b["inspection"].pk,
        "target_date": "2031-01-01",
        "review_interval_days": 30,
        "version": version,
        "loaded_version": version,
        "password1": "a long new passphrase 42",
        "password2": "a long new passphrase 42",
        "post": "yes",
        "_change_history": "1",
    }


def _text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if content[:2] == b"PK":  # an Excel export: read the sheets' XML
        with zipfile.ZipFile(io.BytesIO(content)) as book:
            content = b"".join(book.read(name) for name in book.namelist())
    return content.decode("utf-8", errors="replace").lower()


def _refused(response) -> bool:
    final = response.request["PATH_INFO"]
    return response.status_code in REFUSED or final.startswith(SIGN_IN)


def snapshot(world: World) -> dict:
    """Everything of A a hostile request could change, read fresh."""
    a = world.a
    rec = Recommendation.objects.get(pk=a["recommendation"].pk)
    org = a["organisation"].pk
    return {
        "organisation": list(Organisation.objects.filter(pk=org).values()),
        "users": list(User.objects.filter(organisation_id=org).order_by("pk").values()),
        "groups": list(User.groups.through.objects.filter(user__organisation_id=org).values_list().order_by("pk")),
        "inspections": list(Inspection.objects.filter(organisation_id=org).values()),
        "findings": list(Finding.objects.filter(inspection__organisation_id=org).values()),
        "recommendation": {k: v for k, v in vars(rec).items() if not k.startswith("_")},
        "evidence": list(Evidence.objects.filter(recommendation=rec).order_by("pk").values()),
        "updates": ProgressUpdate.objects.filter(recommendation=rec).count(),
        "events": RecommendationEvent.objects.filter(recommendation=rec).count(),
        "reminders": list(Reminder.objects.filter(reminder_of_organisation(org)).order_by("pk").values()),
        "notification_preferences": list(NotificationPreference.objects.filter(user__organisation_id=org).values()),
        "plan": list(PlanAction.objects.filter(recommendation=rec).order_by("pk").values()),
        "measures": list(OutcomeMeasure.objects.filter(recommendation=rec).order_by("pk").values()),
        "data": list(MeasureDataPoint.objects.filter(measure__recommendation=rec).order_by("pk").values()),
        "history": sum(model.history.count() for model in (Recommendation, Finding, Inspection, User, Organisation)),
    }


# The tests.


def test_every_url_pattern_is_known_to_this_test(world, db):
    cases = object_cases(world)

    assert len(cases) > 60  # the admin, the staff pages and the API, each with A's objects


@pytest.mark.parametrize("role", B_ROLES)
def test_nothing_of_organisation_a_reaches_anyone_of_organisation_b(world, db, role):
    client = _client(world, role)
    before = snapshot(world)
    hostile = _hostile(world)
    problems = []

    for case in object_cases(world):
        requests = [("GET", lambda case=case: client.get(case.url, follow=True))]
        if case.post:
            if case.url.startswith("/api/"):
                requests.append(
                    (
                        "POST",
                        lambda case=case: client.post(case.url, hostile, content_type="application/json", follow=True),
                    )
                )
            else:
                requests.append(("POST", lambda case=case: client.post(case.url, hostile, follow=True)))
        for method, send in requests:
            response = send()
            if not _refused(response):
                problems.append(f"{method} {case.url} ({case.route}): {response.status_code}, not refused")
            if MARKER in _text(response):
                problems.append(f"{method} {case.url} ({case.route}): shows organisation A's data")

    assert not problems, "\n".join(problems)
    assert snapshot(world) == before, "a request of organisation B changed organisation A's data"


@pytest.mark.parametrize("role", B_ROLES)
def test_pages_of_no_object_show_nothing_of_a(world, db, role):
    client = _client(world, role)
    problems = []

    for url in pages_of_no_object(world):
        response = client.get(url, follow=True)
        if response.status_code >= 500:
            problems.append(f"GET {url}: {response.status_code}")
        if MARKER in _text(response):
            problems.append(f"GET {url}: shows organisation A's data")

    assert not problems, "\n".join(problems)


# Pages of no object whose form changes the signed-in person's own settings, and only theirs.
OWN_SETTINGS = ["tracker:notification-settings"]


@pytest.mark.parametrize("role", B_ROLES)
def test_own_settings_pages_change_nothing_of_a(world, db, role):
    client = _client(world, role)
    before = snapshot(world)
    # A valid choice for every kind, so that each of B's forms is saved: to B's person, never to A's.
    kinds = ["returned", "ownership", "accepted", "awaiting_assurance", "target_moved"]
    hostile = {**_hostile(world), "user": world.a["user:owner"].pk, **dict.fromkeys(kinds, "immediate")}
    hostile["escalations"] = "daily"
    problems = []

    for name in OWN_SETTINGS:
        response = client.post(reverse(name), hostile, follow=True)
        if response.status_code >= 500 or MARKER in _text(response):
            problems.append(f"POST {reverse(name)}: {response.status_code}")

    assert not problems, "\n".join(problems)
    assert snapshot(world) == before


@pytest.mark.parametrize("role", ["lead", "reviewer", "owner", "viewer"])
def test_bs_own_pages_and_their_choices_show_nothing_of_a(world, db, role):
    """B's own records' pages (change forms with their choice lists, past versions, the staff pages'
    forms) through the same patterns: whatever B may see there, nothing of A is in it."""
    client = _client(world, role)
    problems = []

    for case in object_cases(world, side="b"):
        response = client.get(case.url, follow=True)
        if response.status_code >= 500:
            problems.append(f"GET {case.url}: {response.status_code}")
        if MARKER in _text(response):
            problems.append(f"GET {case.url} ({case.route}): shows organisation A's data")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ["lead", "reviewer", "owner", "viewer"])
def test_bulk_actions_of_b_cannot_reach_a(world, db, role):
    client = _client(world, role)
    before = snapshot(world)
    hostile = _hostile(world)
    problems = []

    for model, model_admin in admin.site._registry.items():
        obj = _object(world.a, model)
        if obj is None:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in [*(a if isinstance(a, str) else a.__name__ for a in model_admin.actions), "delete_selected"]:
            data = {**hostile, "action": action, "_selected_action": [obj.pk], "index": 0, "interval_days": 30}
            response = client.post(url, data, follow=True)
            if response.status_code >= 500 or MARKER in _text(response):
                problems.append(f"{action} on {url}: {response.status_code}")

    assert not problems, "\n".join(problems)
    assert snapshot(world) == before


@pytest.mark.parametrize("role", ["lead", "owner", "viewer"])
def test_the_lists_bulk_changes_and_saved_filters_of_b_cannot_reach_a(world, db, role):
    """The list's own forms (bulk changes, saved filters) take ids in the body: A's ids change nothing."""
    rec = world.a["recommendation"]
    saved = SavedFilter.objects.create(
        user=world.people["a-lead"], organisation=world.a["organisation"], name=MARKER, query="rag=red"
    )
    client = _client(world, role)
    before = snapshot(world)
    url = reverse("tracker:recommendations")
    data = {
        "form": "bulk",
        "row": [f"{rec.pk}:{rec.version}"],
        "selected": [rec.pk],
        "rag": "red",
        "reason": "hacked",
        "owner": world.people["owner"].pk,
        "review_interval_days": 30,
    }
    bulk = client.post(url, data, follow=True)
    deleted = client.post(url, {"form": "delete-filter", "saved": saved.pk}, follow=True)
    listed = client.get(url)
    for response in (bulk, deleted, listed):
        assert response.status_code < 500 and MARKER not in _text(response)
    assert SavedFilter.objects.filter(pk=saved.pk).exists()
    assert snapshot(world) == before


def test_organisation_a_reaches_its_own_objects_through_the_same_urls(world, db):
    """The control: the filled URLs are real. A's own lead is not told "not found" by them."""
    client = _client(world, "a-lead")
    missing = []

    for case in object_cases(world):
        if NOT_FOUND_EVEN_AT_HOME.search(case.url):
            continue
        if case.target is not None and not hasattr(case.target, "get_absolute_url"):
            continue  # "view on site" of a record with no page of its own
        response = client.get(case.url, follow=True)
        if response.status_code == 404:
            missing.append(f"{case.url} ({case.route})")

    assert not missing, "\n".join(missing)


def test_the_platform_operator_sees_every_organisation_by_design(world, db):
    operator = UserFactory(username="operator", organisation=None, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    rec = world.a["recommendation"]

    response = client.get(reverse("admin:tracker_recommendation_change", args=[rec.pk]))

    assert response.status_code == 200
    assert MARKER in _text(response)
    assert client.get(reverse("admin:tracker_recommendation_history", args=[rec.pk])).status_code == 200


def test_view_on_site_does_not_even_redirect_to_another_organisations_page(world, db):
    """Django's own shortcut would redirect to any object's page by id, confirming that it exists."""
    rec = world.a["recommendation"]
    url = f"/admin/r/{ContentType.objects.get_for_model(Recommendation).pk}/{rec.pk}/"

    assert _client(world, "lead").get(url).status_code == 404
    assert _client(world, "lead").get(url.replace(f"/{rec.pk}/", "/not-a-number/")).status_code == 404
    at_home = _client(world, "a-lead").get(url)
    assert (at_home.status_code, at_home["Location"]) == (302, f"http://testserver{rec.get_absolute_url()}")

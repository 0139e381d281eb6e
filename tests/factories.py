"""factory_boy factories shared by every test folder."""

import datetime as dt

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from tracker.models import Evidence, Finding, Inspection, Organisation, Quotation, Recommendation, Source, Theme, User
from tracker.permissions import Role


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"force-{n}")
    name = factory.Sequence(lambda n: f"Test Force {n}")
    kind = Organisation.Kind.POLICE_FORCE


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    organisation = factory.SubFactory(OrganisationFactory)
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or []:
            group, _ = Group.objects.get_or_create(name=str(role))
            self.groups.add(group)


class ThemeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Theme
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"theme-{n}")
    name = factory.Sequence(lambda n: f"Theme {n}")


class InspectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Inspection

    organisation = factory.SubFactory(OrganisationFactory)
    slug = factory.Sequence(lambda n: f"inspection-{n}")
    inspectorate = Inspection.Inspectorate.HMICFRS
    programme = "National child protection inspection"
    title = factory.Sequence(lambda n: f"Child protection inspection {n}")
    published_text = "January 2025"


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Finding
        skip_postgeneration_save = True

    inspection = factory.SubFactory(InspectionFactory)
    reference = factory.Sequence(lambda n: f"OBS{n % 999 + 1}")
    kind = Finding.Kind.CONCERN
    title = factory.Sequence(lambda n: f"Finding {n}")
    summary = "The force does not consistently respond to risk."

    @factory.post_generation
    def quote(finding, create, extracted, **kwargs):
        """One quotation from a news report of the inspection; ``quote="..."`` sets its words."""
        if not create:
            return
        source, _ = Source.objects.get_or_create(
            inspection=finding.inspection,
            key="news-report",
            defaults={"title": "News report of the inspection", "kind": Source.Kind.NEWSPAPER_REPORT},
        )
        Quotation.objects.create(
            finding=finding,
            source=source,
            position=1,
            text=extracted if extracted is not None else "the force doesn’t consider and respond to risk effectively",
            location="paragraph 1",
        )


class RecommendationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recommendation

    finding = factory.SubFactory(FindingFactory)
    # As workflow.create_recommendation sets it: the finding's inspection's organisation.
    organisation = factory.LazyAttribute(lambda r: r.finding.inspection.organisation)
    title = factory.LazyAttribute(lambda r: r.finding.title)
    review_interval_days = 28
    next_review_due = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=28))
    outcome_measure = "Audited cases show children located promptly."


class EvidenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Evidence

    recommendation = factory.SubFactory(RecommendationFactory)
    kind = Evidence.Kind.NOTE
    category = Evidence.Category.OUTPUT
    description = "Training delivered to response officers"
    note = "Attendance register held by L&D."
    added_by = factory.LazyAttribute(lambda e: e.recommendation.owner)


__all__ = ["Role"]

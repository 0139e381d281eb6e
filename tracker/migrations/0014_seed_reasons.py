"""Seeded recommendations' first events named the seed file ("Seeded from seeds/x.yaml"), an internal
path shown to users on the timeline. Word them by the publication instead, as seeding now does
(``tracker.sources.seeded_from``). Only that reason changes: the events themselves, their times and
every other reason are kept as they are."""

import re

from django.db import migrations, models

from tracker.sources import seeded_from

SEED_FILE_REASON = re.compile(r"^Seeded from \S+\.ya?ml$")


def word_by_publication(apps, schema_editor):
    Event = apps.get_model("tracker", "RecommendationEvent")
    events = Event.objects.filter(action="created", actor__isnull=True, reason__startswith="Seeded from ")
    for event in events.select_related("recommendation__finding__inspection").iterator(chunk_size=500):
        if not SEED_FILE_REASON.match(event.reason):
            continue
        inspection = event.recommendation.finding.inspection
        event.reason = seeded_from(
            inspection.inspectorate,
            inspection.joint_inspectorates,
            inspection.title,
            inspection.published,
            inspection.published_text,
        )
        event.save(update_fields=["reason"])


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0013_ledger_items"),
    ]

    operations = [
        # Names only (no change to the tables): the words a refused date is explained in.
        migrations.AlterField(
            model_name="historicalinspection",
            name="action_plan_due",
            field=models.DateField(
                blank=True,
                help_text="When the force's action plan in response to the report is due.",
                null=True,
                verbose_name="action plan date",
            ),
        ),
        migrations.AlterField(
            model_name="historicalinspection",
            name="revisit_due",
            field=models.DateField(
                blank=True, help_text="When the inspectorate is due to revisit.", null=True, verbose_name="revisit date"
            ),
        ),
        migrations.AlterField(
            model_name="inspection",
            name="action_plan_due",
            field=models.DateField(
                blank=True,
                help_text="When the force's action plan in response to the report is due.",
                null=True,
                verbose_name="action plan date",
            ),
        ),
        migrations.AlterField(
            model_name="inspection",
            name="revisit_due",
            field=models.DateField(
                blank=True, help_text="When the inspectorate is due to revisit.", null=True, verbose_name="revisit date"
            ),
        ),
        # The file's path is not worth restoring: going back leaves the publication's wording in place.
        migrations.RunPython(word_by_publication, migrations.RunPython.noop),
    ]

"""Copy each recommendation's organisation (its finding's inspection's) onto the recommendation.

Added nullable, filled by one UPDATE, then made NOT NULL; the history rows are filled the same way.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_organisation(apps, schema_editor):
    Finding = apps.get_model("tracker", "Finding")
    organisation_of_finding = Subquery(
        Finding.objects.filter(pk=OuterRef("finding_id")).values("inspection__organisation_id")[:1]
    )
    for name in ("Recommendation", "HistoricalRecommendation"):
        apps.get_model("tracker", name).objects.update(organisation_id=organisation_of_finding)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0005_sweep_runs"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalrecommendation",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="tracker.organisation",
            ),
        ),
        migrations.AddField(
            model_name="recommendation",
            name="organisation",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="recommendations",
                to="tracker.organisation",
            ),
        ),
        migrations.RunPython(fill_organisation, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="recommendation",
            name="organisation",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="recommendations",
                to="tracker.organisation",
            ),
        ),
        migrations.AddIndex(
            model_name="recommendation",
            index=models.Index(fields=["organisation", "next_review_due", "id"], name="rec_org_due_idx"),
        ),
        migrations.AddIndex(
            model_name="recommendation",
            index=models.Index(fields=["organisation", "owner", "next_review_due", "id"], name="rec_org_owner_due_idx"),
        ),
        migrations.AddIndex(
            model_name="recommendation",
            index=models.Index(
                fields=["organisation", "status", "next_review_due", "id"], name="rec_org_status_due_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="recommendation",
            index=models.Index(fields=["organisation", "rag", "next_review_due", "id"], name="rec_org_rag_due_idx"),
        ),
        migrations.AddIndex(
            model_name="recommendation",
            index=models.Index(fields=["organisation", "title", "id"], name="rec_org_title_idx"),
        ),
    ]

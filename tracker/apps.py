from django.apps import AppConfig
from django.contrib.staticfiles.apps import StaticFilesConfig as BaseStaticFilesConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Recommendation tracker"
    default_auto_field = "django.db.models.BigAutoField"


class StaticFilesConfig(BaseStaticFilesConfig):
    """collectstatic without GOV.UK Frontend's sources: only the built CSS, JS, fonts and images are served."""

    ignore_patterns = [
        *BaseStaticFilesConfig.ignore_patterns,
        "*.scss",
        "*.njk",
        "*.md",
        "*.mjs",
        "fixtures.json",
        "macro-options.json",
    ]

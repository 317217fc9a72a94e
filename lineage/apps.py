from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"
    label = "lineage"
    verbose_name = "Decision lineage"

from django.apps import AppConfig


class StrategistConfig(AppConfig):
    name = "policies.strategist"
    label = "strategist"
    verbose_name = "Strategist"
    default_auto_field = "django.db.models.BigAutoField"

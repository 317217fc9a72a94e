from django.apps import AppConfig


class BrakesConfig(AppConfig):
    name = "brakes"
    label = "brakes"
    verbose_name = "Brakes on guessing"
    default_auto_field = "django.db.models.BigAutoField"

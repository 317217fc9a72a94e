from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Registers the API token's security scheme with drf-spectacular before any schema is generated.
        from core import schema  # noqa: F401

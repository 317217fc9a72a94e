from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Risk policies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from policies import incidents  # noqa: F401  (connects the receiver that writes incidents into audit)

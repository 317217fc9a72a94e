from django.apps import AppConfig


class StrategistConfig(AppConfig):
    name = "strategist"
    label = "strategist"
    verbose_name = "Strategist"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from policies import extensions
        from strategist import envelope, watchdog

        extensions.install_proposal_envelope(envelope.proposal_breaches)
        extensions.add_reconcile_pass(watchdog.WatchPass)

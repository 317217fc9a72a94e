from django.apps import AppConfig


class OutagesConfig(AppConfig):
    name = "outages"
    label = "outages"
    verbose_name = "Outages and incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from outages import watch
        from policies import extensions

        # Run by `reconcile_policies --watch 5` (`make up`, the `reconcile` workload), under the `control` identity:
        # the only one that both reads the gates' heartbeats and may publish alerts (docs/alerting.md).
        extensions.add_reconcile_pass(watch.GateWatchPass)

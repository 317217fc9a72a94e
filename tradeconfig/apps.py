from django.apps import AppConfig


class TradeConfigConfig(AppConfig):
    name = "tradeconfig"
    label = "tradeconfig"
    verbose_name = "Trade engine configuration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from policies import extensions
        from tradeconfig import services

        extensions.add_reconcile_pass(services.SettlePass)

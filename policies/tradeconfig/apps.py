from django.apps import AppConfig


class TradeConfigConfig(AppConfig):
    name = "policies.tradeconfig"
    label = "tradeconfig"
    verbose_name = "Trade engine configuration"
    default_auto_field = "django.db.models.BigAutoField"

"""Hand an alert to every channel: one Celery task each, on the `alerts` queue."""

from collections.abc import Iterable

from audit.alerting.channels import CHANNELS
from audit.alerting.delivery import as_task_argument
from cio_kernel.contracts.alert import Alert


def channels() -> list[str]:
    """Every channel, configured or not: an unconfigured one records `skipped`, so the gap shows in admin."""
    return list(CHANNELS)


def dispatch(alert: Alert, round_: int = 0, only: Iterable[str] | None = None) -> list[str]:
    """Queue one delivery per channel; raises when the broker cannot take them (the caller falls back)."""
    from audit.alerting.tasks import QUEUE, deliver

    sent = []
    for channel in only or channels():
        deliver.apply_async(args=[as_task_argument(alert), channel, round_], queue=QUEUE, retry=False)
        sent.append(channel)
    return sent

"""Grafana: an annotation (`POST <CIO_GRAFANA_URL>/api/annotations`, bearer `CIO_GRAFANA_TOKEN`), tagged so
dashboards can show alerts on their graphs. Works against Grafana itself or anything that speaks that route."""

import httpx
from django.conf import settings

from alerting.channels.base import Channel, DeliveryError, NotConfiguredError, body
from cio_kernel.contracts.alert import Alert


class GrafanaDeliveryError(DeliveryError):
    pass


class GrafanaChannel(Channel):
    name = "grafana"

    def configured(self) -> bool:
        return bool(settings.CIO_GRAFANA_URL)

    def send(self, alert: Alert, timeout_s: float | None = None) -> None:
        if not self.configured():
            raise NotConfiguredError("no Grafana URL (CIO_GRAFANA_URL)")
        headers = {"Authorization": f"Bearer {settings.CIO_GRAFANA_TOKEN}"} if settings.CIO_GRAFANA_TOKEN else {}
        annotation = {
            "time": int(alert.ts.timestamp() * 1000),
            "tags": ["petrosa-cio", f"severity:{alert.severity.value}", f"source:{alert.source}"],
            "text": body(alert),
        }
        url = f"{settings.CIO_GRAFANA_URL.rstrip('/')}/api/annotations"
        try:
            response = httpx.post(
                url, json=annotation, headers=headers, timeout=timeout_s or settings.CIO_ALERT_CHANNEL_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            raise GrafanaDeliveryError(f"Grafana unreachable: {type(exc).__name__}", retry_may_help=True) from exc
        if response.status_code >= 400:
            transient = response.status_code >= 500 or response.status_code in (408, 429)
            raise GrafanaDeliveryError(f"Grafana answered HTTP {response.status_code}", retry_may_help=transient)

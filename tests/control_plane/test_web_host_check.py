"""The web's probes through the real app with the rendered `CIO_ALLOWED_HOSTS` (deploy/k8s): Django answers
`/api/health` for the Host the readiness probe sends and refuses the kubelet's default (the pod's IP) with 400, so
the check is real and the probe passes it. Behind the fleet's ingress (TLS ends there), the admin's forms and the
live feed trust the public origin the overlay names, and only with it."""

import pytest
from django.test import Client, override_settings

from cio_site.origins import origin_allowed
from deploy.k8s import fleet
from deploy.workloads import workload
from tests.k8s_rendered import POD_IP, allowed_hosts, base_config, fleet_config, web_probe_hosts

pytestmark = pytest.mark.django_db


def test_the_web_answers_each_probe_as_the_kubelet_sends_it_and_refuses_a_bare_pod_ip(settings, redis_url):
    settings.REDIS_URL = redis_url  # the health view reads the gates' heartbeats there
    web = workload("web")
    # (Prometheus scrapes `/metrics` by the pod's address too: tests/control_plane/test_metrics_dashboard.py.)
    assert web.readiness is not None and web.liveness is not None
    probes = web_probe_hosts()
    for config in (base_config(), fleet_config()):
        with override_settings(ALLOWED_HOSTS=allowed_hosts(config)):
            client = Client()
            for path, host in probes.items():
                answer = client.get(path, HTTP_HOST=f"{host or POD_IP}:{web.port}")
                assert answer.status_code == 200, (path, host, answer.status_code)
            # The same readiness request by the pod's address: refused by the host check, never ready.
            assert client.get(web.readiness.path, HTTP_HOST=f"{POD_IP}:{web.port}").status_code == 400
    # The public name is allowed only where the fleet overlay adds it.
    with override_settings(ALLOWED_HOSTS=allowed_hosts(base_config())):
        assert Client().get(web.readiness.path, HTTP_HOST=fleet.PUBLIC_HOST).status_code == 400
    with override_settings(ALLOWED_HOSTS=allowed_hosts(fleet_config())):
        assert Client().get(web.readiness.path, HTTP_HOST=fleet.PUBLIC_HOST).status_code == 200


def _login_post(host: str, origin: str) -> int:
    """An admin login form sent from the public HTTPS page, arriving as plain HTTP from the ingress."""
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/", HTTP_HOST=host)
    token = client.cookies["csrftoken"].value
    answer = client.post(
        "/admin/login/",
        {"username": "nobody", "password": "wrong", "csrfmiddlewaretoken": token},
        HTTP_HOST=host,
        HTTP_ORIGIN=origin,
    )
    return answer.status_code


def test_the_admin_and_the_live_feed_trust_the_public_origin_the_fleet_overlay_names(settings, redis_url):
    settings.REDIS_URL = redis_url
    config = fleet_config()
    host, origin = fleet.PUBLIC_HOST, config["CIO_TRUSTED_ORIGINS"]
    socket = {"type": "websocket", "scheme": "ws", "headers": [(b"host", host.encode()), (b"origin", origin.encode())]}
    with override_settings(ALLOWED_HOSTS=allowed_hosts(config), CSRF_TRUSTED_ORIGINS=[]):
        assert _login_post(host, origin) == 403  # https page, http request: not the request's own origin
        assert not origin_allowed(socket)
    with override_settings(ALLOWED_HOSTS=allowed_hosts(config), CSRF_TRUSTED_ORIGINS=origin.split(",")):
        assert _login_post(host, origin) == 200  # the form again, with the wrong password: past the CSRF check
        assert origin_allowed(socket)

"""`GET /api/live` answers without the database: pytest-django refuses any query in a test not granted one, so
a liveness view that touched the database would fail here (and a database outage would restart every web pod)."""

from django.test import Client


def test_liveness_answers_without_touching_the_database():
    answer = Client().get("/api/live")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert Client().post("/api/live").status_code == 405
    # The kubelet asks by the pod's address, which no deployment lists in CIO_ALLOWED_HOSTS.
    assert Client().get("/api/live", HTTP_HOST="10.42.0.17:8000").status_code == 200

"""No credential reaches an LLM prompt, a thought, a log line or an audit record (the Strategist issue's proof).

Secrets are planted where a deployment has them (the worker's environment: exchange keys, the LLM key, passwords
in connection URLs, Django's secret key) and where careless inputs put them (extra fields on market and
portfolio messages, a regime label that spells an exchange secret, a policy description, incident titles, a
trigger's detail, and an LLM that answers with them). Full cycles then run in a real Celery worker against a
local chat-completions server that records every request; every place a secret could end up is searched."""

import json

import orjson
import pytest

from audit import incidents
from audit.store import get_store
from audit.store.django_db import DjangoAuditStore
from deploy.fake_openai import Step, answer
from policies import services
from policies.models import PolicyEvent, PolicyVersion
from strategist import cycle_requests
from strategist.models import Cycle
from strategist.tasks import run_cycle
from strategist.triggers import ALERT, MANUAL
from tests.audit.ingest_helpers import wait_for
from tests.celery_processes import celery_env, start_worker
from tests.factories import make_spec
from tests.strategist.helpers import BASE_SPEC, portfolio, regime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

LLM_KEY = "sk-proj-llmkey-7f3a9c2e1b"
ENV_SECRETS = {
    "BINANCE_API_KEY": "AKIAEXCHANGEKEY0001",
    "BINANCE_API_SECRET": "binance_secret_value_42",  # also a valid regime label: only its value gives it away
    "EXCHANGE_PASSPHRASE": "correct-horse-battery-staple",
    "SECRET_KEY": "django-prod-secret-key-5b1e0c",
    "CIO_LLM_API_KEY": LLM_KEY,
    "MONGODB_URI": "mongodb://cio:MongoPassw0rd-xyz@127.0.0.1:1/petrosa_cio",
    "NATS_URL": "nats://control:NatsPassw0rd-abc@127.0.0.1:1",
}
INPUT_SECRETS = ["eyJhbGciOiJIUzI1NiJ9.input.sig", "hunter2-input-password"]
SECRETS = [v for k, v in ENV_SECRETS.items() if k not in ("MONGODB_URI", "NATS_URL")]
SECRETS += ["MongoPassw0rd-xyz", "NatsPassw0rd-abc", *INPUT_SECRETS]


def test_no_secret_leaves_through_a_prompt_a_thought_a_log_or_an_audit_record(
    strategist_stack, users, redis_client, redis_url, tmp_path, fake_llm, broker
):
    # The worker's planted SECRET_KEY is the deployment's: the test's inputs are sealed with it too.
    strategist_stack.SECRET_KEY = ENV_SECRETS["SECRET_KEY"]
    spec = make_spec(**BASE_SPEC).model_copy(
        update={"description": f"desk notes: api_key={INPUT_SECRETS[0]} {ENV_SECRETS['BINANCE_API_KEY']}"}
    )
    proposal = services.propose(spec=spec.model_dump(mode="json", by_alias=True), by=users["officer1"], rationale="v1")
    services.approve(proposal, by=users["officer2"])
    services.activate(proposal, by=users["officer2"])
    regime(redis_client, "BTCUSDT", 0.07, regime=ENV_SECRETS["BINANCE_API_SECRET"], api_key=INPUT_SECRETS[0])
    portfolio(redis_client, drawdown=0.02, exchange_credentials={"password": INPUT_SECRETS[1]})
    incidents.record(
        incidents.make(
            "inc-1",
            "rejection_burst",
            f"burst after token={INPUT_SECRETS[0]} leaked",
            proposal.proposed_at,
            {"rejections": 40},
            "momentum-1",
            "BTCUSDT",
        )
    )
    parroting = answer(
        rationale=f"Tighten. (I was told {ENV_SECRETS['EXCHANGE_PASSPHRASE']} and {LLM_KEY}; "
        f"password={INPUT_SECRETS[1]})",
        changes=[
            {"scope": "global", "field": "min_confidence", "value": 0.6, "note": ENV_SECRETS["BINANCE_API_KEY"]}
        ],  # an extra key: invalid, asked again
    )
    fake_llm.then(
        Step(content=parroting),
        Step(
            content=answer(
                rationale=f"Tighten, {ENV_SECRETS['SECRET_KEY']}",
                changes=[{"scope": "global", "field": "min_confidence", "value": 0.6}],
            )
        ),
        Step(content=f"not json {ENV_SECRETS['BINANCE_API_KEY']}"),
        Step(content=f"still not json {LLM_KEY}"),
    )
    env = celery_env(
        strategist_stack,
        redis_url,
        tmp_path,
        **ENV_SECRETS,
        CIO_LLM_BASE_URL=fake_llm.base_url,
        CIO_LLM_MODEL="test-model",
        CIO_LLM_TIMEOUT_S="5",
        CIO_LOG_LEVEL="DEBUG",
    )
    env["NATS_URL"] = ENV_SECRETS["NATS_URL"]
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        asked = cycle_requests.record(MANUAL, {}, via=cycle_requests.ADMIN, by=users["officer1"])
        run_cycle.apply_async(kwargs={"trigger": MANUAL, "request": asked})
        wait_for(lambda: Cycle.objects.count() == 1, 60, "the LLM cycle")
        # A trigger's detail as the listener records it, from an alert that carries secrets in its text.
        detail = {
            "severity": "critical",
            "title": f"backlog; Authorization: Bearer {INPUT_SECRETS[0]}",
            "source": ENV_SECRETS["BINANCE_API_SECRET"],
        }
        heard = cycle_requests.record(ALERT, detail, via=cycle_requests.LISTENER)
        run_cycle.apply_async(kwargs={"trigger": ALERT, "request": heard})
        wait_for(lambda: Cycle.objects.count() == 2, 60, "the fallback cycle")
    finally:
        worker.stop()

    llm_cycle, fallback_cycle = Cycle.objects.order_by("started_at")
    assert llm_cycle.brain == "llm" and llm_cycle.outcome in ("proposed", "duplicate")
    assert fallback_cycle.brain == "rules" and fallback_cycle.fallback_reason.startswith("invalid_output")
    assert len(fake_llm.requests) == 4

    # What left for the LLM: bodies carry no secret; the key travels only in its own header, to the LLM only.
    for request in fake_llm.requests:
        assert request.headers["Authorization"] == f"Bearer {LLM_KEY}"
        others = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        assert not [s for s in SECRETS if s in request.body.decode() or s in json.dumps(others)]
    print("BODY0", fake_llm.requests[0].body.decode()[-1500:])
    print("BODY3", fake_llm.requests[3].body.decode()[-600:])
    assert "[REDACTED]" in fake_llm.bodies()  # the planted ones were there to be found, and were replaced

    store = get_store()
    assert isinstance(store, DjangoAuditStore)
    evidence = {
        "worker log": worker.log(),
        "cycles": orjson.dumps(
            [c.thought | {"rationale": c.rationale, "detail": c.trigger_detail} for c in Cycle.objects.all()]
        ).decode(),
        "thoughts": orjson.dumps([store.get_thought(c.cycle_id).__repr__() for c in Cycle.objects.all()]).decode(),
        "policy versions": orjson.dumps(list(PolicyVersion.objects.values("rationale", "decision_reason"))).decode(),
        "policy events": orjson.dumps(list(PolicyEvent.objects.values("reason", "detail"))).decode(),
        "incidents": orjson.dumps(
            [incidents.as_dict(i) for i in store.recent_incidents(50) if i.incident_id != "inc-1"], default=str
        ).decode(),
    }
    assert "Strategist cycle" in evidence["worker log"]  # the log is the worker's, and it did log the cycles
    for where, text in evidence.items():
        leaked = [s for s in SECRETS if s in text]
        assert not leaked, f"{leaked} leaked into the {where}"
    assert "[REDACTED]" in evidence["thoughts"]
    # The LLM cycle's rationale (scrubbed) is the version's, or, once the fallback cycle amended that proposal, the
    # amendment's record of what it held before.
    assert "[REDACTED]" in evidence["policy versions"] + evidence["policy events"]

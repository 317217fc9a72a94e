"""One reasoning cycle, start to finish (docs/strategist.md, "A cycle"):

lock → context (allow-listed, scrubbed) → the LLM brain if one is configured, else or on its failure the rule
brain → the patch applied and validated by `PolicySpec` → the envelope → duplicate check → its open proposal no
officer has reviewed yet amended in place (`services.amend`: one proposal under review, not one per cycle), or a
`proposed` version by the Strategist's own account through `services.propose` (refused at once when outside the
envelope; approved by the auto-approval rule when it provably only tightens, stays inside the narrower
auto-approval envelope, an officer enabled the rule, and the cycle is verified: its trigger re-derived from a
record the broker cannot write and none of its inputs refused) → the cycle row and its thought, in one
transaction → the thought into the audit store (retried by `flush_thoughts` if the store is away).

The Strategist never activates and never approves on its own account; an automatic approval names its rule, not
a person."""

import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
import redis
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from audit import incidents
from audit.records import Thought, thought_from
from audit.store import get_store
from cio_kernel.policy.document import policy_checksum
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.tightening import loosenings
from cio_kernel.redaction import SecretScrubber, process_scrubber
from core import roles, tracing
from core.errors import OutsideEnvelopeError, PermissionDeniedError
from core.redis_clients import sync_redis
from policies import selectors, services
from policies.models import PolicyVersion, ProposerKind, Status, compact_spec
from policies.selectors import baseline_version
from strategist import anomalies, envelope, triggers
from strategist.brains.base import Brain, BrainUnavailableError, Thinking
from strategist.brains.llm import LlmBrain, LlmConfig
from strategist.brains.rules import RuleBrain
from strategist.budget import TokenBudget
from strategist.changes import InvalidChangeError, apply_changes, patch_check
from strategist.context import CycleContext, build_context
from strategist.inputs import Checked, read_portfolio, read_regimes
from strategist.lock import cycle_lock
from strategist.models import Cycle, Outcome, StrategistSettings

log = logging.getLogger(__name__)

STRATEGIST_USERNAME = "strategist"
AUTO_APPROVAL_RULE = "strategist.auto_approve_tightening"


def strategist_redis() -> redis.Redis:
    timeout = float(settings.CIO_ACTIVATION_TIMEOUT_S)
    return sync_redis(settings.CIO_STRATEGIST_REDIS_URL, timeout)


def strategist_user() -> User:
    """The account every Strategist proposal is made by: it can read and propose, nothing else."""
    user, created = User.objects.get_or_create(username=STRATEGIST_USERNAME, defaults={"is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    group = Group.objects.filter(name=roles.STRATEGIST).first()
    if group is not None and not user.groups.filter(pk=group.pk).exists():
        user.groups.add(group)
    return user


@dataclass(frozen=True)
class Verdict:
    outcome: str
    spec: PolicySpec | None
    validation: dict[str, Any]


def judge(active: PolicyVersion, thinking: Thinking, row: StrategistSettings) -> Verdict:
    """What becomes of a brain's patch: valid? a change at all? inside the envelope (the same check
    `services.propose` makes)? a pure tightening, and one auto-approval may cover?"""
    current = active.parsed_spec
    try:
        spec = apply_changes(current, thinking.changes)
    except InvalidChangeError as exc:
        return Verdict(Outcome.INVALID, None, {"schema": exc.problems})
    if not thinking.changes or policy_checksum(spec) == policy_checksum(current):  # (the row may hold an older scheme)
        return Verdict(Outcome.NO_CHANGE, spec, {"schema": "ok", "changed": False})
    looser = [str(x) for x in loosenings(current, spec)]
    breaches = [f"{b.scope}.{b.field}: {b.message}" for b in envelope.breaches(spec, active, row.envelope())]
    validation: dict[str, Any] = {"schema": "ok", "changed": True, "only_tightens": not looser, "loosenings": looser}
    validation["envelope"] = breaches or "inside"
    if not looser and not breaches:
        problems = envelope.auto_approval_problems(active, spec, row.auto_envelope())
        validation["auto_approval"] = problems or "eligible"
    return Verdict(Outcome.OUTSIDE_ENVELOPE if breaches else Outcome.PROPOSED, spec, validation)


def _lock_broken(why: str) -> None:
    anomalies.record(anomalies.LOCK_ILLEGITIMATE, {"reason": why})


def run_cycle(
    trigger: triggers.Trigger,
    *,
    claim: Callable[[], triggers.Trigger] | None = None,
    client: Any = None,
    llm_config: LlmConfig | None = None,
    use_env_llm: bool = True,
) -> Cycle | None:
    """Run one cycle now (raises `CycleBusyError` while another runs). None when the Strategist is switched off.

    `claim`, when given, runs under the lock and returns the trigger to use (the task's verified one, from the
    request row or the schedule), or raises `TriggerRefusedError`: under the lock, so a request runs once."""
    row = StrategistSettings.current()  # one reading of the settings serves the whole cycle
    if not row.enabled:
        log.info("Strategist is switched off: %s cycle skipped", trigger.kind)
        return None
    client = client if client is not None else strategist_redis()
    if llm_config is None and use_env_llm:
        llm_config = LlmConfig.from_env()
    ttl_s, max_hold_s = float(settings.CIO_STRATEGIST_LOCK_TTL_S), float(settings.CIO_STRATEGIST_MAX_CYCLE_S)
    with cycle_lock(client, ttl_s, max_hold_s, _lock_broken):
        if claim is not None:
            trigger = claim()
        trace_id = secrets.token_hex(16)  # the thought's, the proposal's and the span's
        with tracing.control_plane.span(
            tracing.STRATEGIST_CYCLE, trace_id=trace_id, attributes={"cio.trigger": trigger.kind}
        ) as span:
            cycle = _run(trigger, trace_id, client, llm_config, row)
            if span is not None:
                span.set_attributes({"cio.cycle_id": cycle.cycle_id, "cio.outcome": str(cycle.outcome)})
    store_thought(cycle)
    return cycle


@dataclass(frozen=True)
class _Run:
    """What identifies one cycle while it runs."""

    trigger: triggers.Trigger
    cycle_id: str
    trace_id: str
    started: datetime
    clock: float
    scrubber: SecretScrubber
    settings: StrategistSettings
    inputs: Checked


def _run(
    trigger: triggers.Trigger, trace_id: str, client: Any, llm_config: LlmConfig | None, row: StrategistSettings
) -> Cycle:
    checked = Checked()
    run = _Run(
        trigger,
        uuid.uuid4().hex,
        trace_id,
        timezone.now(),
        time.monotonic(),
        process_scrubber(),
        row,
        checked,
    )
    scrubber, started = run.scrubber, run.started
    active = selectors.active_version()
    if active is None:
        return _record(run, None, None, _idle(), None, None, RuleBrain.name)
    regime = read_regimes(client, float(settings.CIO_STRATEGIST_REGIME_MAX_AGE_S), started, checked)
    portfolio = read_portfolio(client, float(settings.CIO_STRATEGIST_PORTFOLIO_MAX_AGE_S), started, checked)
    if checked.refused:
        anomalies.record(anomalies.INPUT_REFUSED, {"refused": checked.refused, "cycle_id": run.cycle_id})
    context = build_context(
        trigger=trigger,
        now=started,
        active=active,
        baseline=baseline_version(active),
        regime=regime,
        portfolio=portfolio,
        envelope=row.envelope(),
        stats_window_s=int(settings.CIO_STRATEGIST_STATS_WINDOW_S),
        scrubber=scrubber,
        input_problems=checked.problems,
    )
    brain: Brain = RuleBrain()
    failure: BrainUnavailableError | None = None
    thinking: Thinking | None = None
    if llm_config is not None:
        llm = LlmBrain(llm_config, TokenBudget(client, llm_config.daily_token_budget), scrubber)
        try:
            thinking, brain = llm.think(context, patch_check(active.parsed_spec)), llm
        except BrainUnavailableError as exc:
            failure = exc
            log.warning("LLM brain unavailable (%s); the rule brain answers this cycle", exc)
    if thinking is None:
        brain = RuleBrain()
        thinking = brain.think(context, patch_check(active.parsed_spec))
    return _record(run, active, context, thinking, judge(active, thinking, row), failure, brain.name)


def _idle() -> Thinking:
    return Thinking(changes=[], rationale="No active policy: nothing to reason about.", model="-", raw_output="")


def _record(
    run: _Run,
    active: PolicyVersion | None,
    context: CycleContext | None,
    thinking: Thinking,
    verdict: Verdict | None,
    failure: BrainUnavailableError | None,
    brain: str,
) -> Cycle:
    trigger, cycle_id, trace_id, started, scrubber = run.trigger, run.cycle_id, run.trace_id, run.started, run.scrubber
    outcome = verdict.outcome if verdict is not None else Outcome.NO_POLICY
    rationale = scrubber.text(thinking.rationale)
    withheld = _withheld(run, verdict)
    with transaction.atomic():
        proposal, outcome = _propose(run, active, verdict, outcome, rationale, brain)
        duration_ms = int((time.monotonic() - run.clock) * 1000)
        spent = failure if failure is not None else thinking
        thought = Thought(
            thought_id=cycle_id,
            ts=started,
            model=thinking.model,
            inputs_summary=scrubber.value(context.summary())
            if context is not None
            else {"trigger": trigger.kind, "trigger_verified": trigger.verified},
            output=scrubber.value(
                {
                    "changes": [c.model_dump(mode="json") for c in thinking.changes],
                    "raw": thinking.raw_output,
                    "attempts": thinking.attempts,
                    **({"llm_attempt": _attempt(failure)} if failure is not None else {}),
                }
            ),
            rationale=rationale,
            proposed_version=proposal.version if proposal is not None else None,
            trigger=trigger.kind,
            brain=brain,
            trace_id=trace_id,
            prompt_hash=spent.prompt_hash,
            prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens,
            validation={
                **(verdict.validation if verdict else {}),
                **({"auto_approval": withheld} if withheld else {}),
                "outcome": str(outcome),
            },
            fallback_reason=scrubber.text(str(failure)) if failure is not None else None,
            duration_ms=duration_ms,
        )
        cycle = Cycle.objects.create(
            cycle_id=cycle_id,
            trigger=trigger.kind,
            trigger_detail=scrubber.value(context.trigger_detail if context is not None else {}),
            request_id=trigger.request_id,
            started_at=started,
            finished_at=timezone.now(),
            brain=brain,
            model=thinking.model,
            fallback_reason=thought.fallback_reason or "",
            outcome=outcome,
            based_on_version=active.version if active is not None else None,
            proposal=proposal,
            rationale=rationale,
            prompt_tokens=thought.prompt_tokens,
            completion_tokens=thought.completion_tokens,
            duration_ms=duration_ms,
            trace_id=trace_id,
            thought=thought_json(thought),
        )
    log.info(
        "Strategist cycle %s (%s, %s brain): %s%s",
        cycle_id,
        trigger.kind,
        brain,
        outcome,
        f" v{proposal.version}" if proposal is not None else "",
    )
    _remember(trigger, cycle, scrubber)
    return cycle


def _attempt(failure: BrainUnavailableError) -> dict[str, Any]:
    return {"reason": failure.reason, "detail": failure.detail, "raw": failure.raw_output, "attempts": failure.attempts}


def _propose(
    run: _Run, active: PolicyVersion | None, verdict: Verdict | None, outcome: str, rationale: str, brain: str
) -> tuple[PolicyVersion | None, str]:
    cycle_id, trace_id = run.cycle_id, run.trace_id
    if active is None or verdict is None or verdict.spec is None or outcome in (Outcome.NO_CHANGE, Outcome.INVALID):
        return None, outcome
    checksum = policy_checksum(verdict.spec)
    pending = PolicyVersion.objects.filter(
        status__in=(Status.PROPOSED, Status.APPROVED), checksum=checksum, based_on=active
    ).first()
    if pending is not None and outcome == Outcome.PROPOSED:
        return pending, Outcome.DUPLICATE
    user = strategist_user()
    text = f"{rationale}\n\n(Strategist cycle {cycle_id}: {run.trigger.kind}, {brain} brain)"
    amended = _amend_open(user, verdict.spec, text, cycle_id, trace_id) if outcome == Outcome.PROPOSED else None
    proposal = amended or services.propose(
        spec=compact_spec(verdict.spec),
        by=user,
        rationale=text,
        thought_id=cycle_id,
        kind=ProposerKind.STRATEGIST,
        trace_id=trace_id,
        record_refusal=True,  # outside the envelope: recorded and rejected at once, so officers see it
    )
    if proposal.status == Status.REJECTED:
        return proposal, Outcome.OUTSIDE_ENVELOPE
    if amended is None:
        _supersede_older(proposal, trace_id)
    row = run.settings
    officer = row.auto_approve_authorised_by
    eligible = verdict.validation.get("only_tightens") and verdict.validation.get("auto_approval") == "eligible"
    if row.auto_approve_tightening and officer is not None and eligible and not _withheld(run, verdict):
        try:
            approved = services.decide_unattended(
                proposal,
                approve=True,
                authorised_by=officer,
                rule=AUTO_APPROVAL_RULE,
                reason=f"approved by rule {AUTO_APPROVAL_RULE}: only tightens v{active.version}, inside the "
                f"auto-approval envelope, verified {run.trigger.kind} cycle (rule enabled by {officer})",
                trace_id=trace_id,
                detail={"rule_enabled_by": officer.get_username(), "only_tightens": True, "cycle_id": cycle_id},
            )
            return approved, Outcome.AUTO_APPROVED
        except PermissionDeniedError:
            log.warning("auto-approval skipped: %s may no longer approve policies", officer)
    return proposal, Outcome.AMENDED if amended is not None else Outcome.PROPOSED


def _amend_open(user: User, spec: PolicySpec, rationale: str, cycle_id: str, trace_id: str) -> PolicyVersion | None:
    """The Strategist's open proposal amended with this cycle's, while no officer has reviewed it (None: there is
    none, or it was reviewed; a new version then). Officers see one proposal, not one per cycle."""
    open_one = (
        PolicyVersion.objects.filter(status=Status.PROPOSED, proposer_kind=ProposerKind.STRATEGIST, proposed_by=user)
        .order_by("-version")
        .first()
    )
    if open_one is None:
        return None
    try:
        return services.amend(
            open_one, spec=compact_spec(spec), by=user, rationale=rationale, thought_id=cycle_id, trace_id=trace_id
        )
    except OutsideEnvelopeError:  # the envelope changed since `judge`: proposed anew, recorded and refused
        return None


def _withheld(run: _Run, verdict: Verdict | None) -> list[str]:
    """Why this cycle may not be approved unseen although its proposal is eligible (empty: it may)."""
    if verdict is None or verdict.validation.get("auto_approval") != "eligible":
        return []
    reasons = []
    if not run.trigger.verified:
        reasons.append("the cycle's trigger is not verified")
    if run.inputs.refused:
        reasons.append(f"{run.inputs.refused} cached input(s) refused as not ours or out of bounds")
    return reasons


def _supersede_older(proposal: PolicyVersion, trace_id: str) -> None:
    """A newer Strategist proposal replaces the Strategist's pending ones: officers review one, the current one."""
    older = PolicyVersion.objects.filter(
        status=Status.PROPOSED, proposer_kind=ProposerKind.STRATEGIST, version__lt=proposal.version
    )
    for stale in older:
        services.decide_unattended(
            stale,
            approve=False,
            reason=f"superseded by the Strategist's newer proposal v{proposal.version}",
            trace_id=trace_id,
        )


def _remember(trigger: triggers.Trigger, cycle: Cycle, scrubber: SecretScrubber) -> None:
    """Regime shifts and portfolio breaches join institutional memory, linked to the thought they started."""
    if trigger.kind not in (triggers.REGIME_SHIFT, triggers.PORTFOLIO_BREACH) or not trigger.verified:
        return  # memory holds only what the listener derived from its inputs and the worker re-validated
    detail = {**scrubber.value(cycle.trigger_detail), "thought_id": cycle.cycle_id, "outcome": cycle.outcome}
    symbol = detail.get("symbol") if isinstance(detail.get("symbol"), str) else None
    title = (
        f"regime shift on {symbol}: {detail.get('from_band')} → {detail.get('to_band')}"
        if trigger.kind == triggers.REGIME_SHIFT
        else "portfolio health breach: " + ", ".join(k for k in detail if k in ("drawdown_pct", "concentration"))
    )
    incidents.record(
        incidents.make(
            f"strategist-{cycle.cycle_id}", trigger.kind, title, cycle.started_at, detail, None, symbol, cycle.trace_id
        )
    )


# -- the thought outbox --------------------------------------------------------------------------------------------
def thought_json(thought: Thought) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(asdict(thought)))


def thought_of(cycle: Cycle) -> Thought:
    stored = dict(cycle.thought)
    stored["ts"] = datetime.fromisoformat(stored["ts"])
    return thought_from(stored)


def store_thought(cycle: Cycle) -> bool:
    """Write the cycle's thought to the audit store; False (and still pending) when the store is away."""
    try:
        get_store().put_thought(thought_of(cycle))
    except Exception as exc:
        log.warning("thought %s not stored yet (the audit store is away: %r); it stays pending", cycle.cycle_id, exc)
        return False
    Cycle.objects.filter(pk=cycle.pk, thought_stored_at__isnull=True).update(thought_stored_at=timezone.now())
    return True


def flush_thoughts(limit: int = 200) -> int:
    """Write pending thoughts, oldest first; stops at the first failure (the store is still away)."""
    stored = 0
    for cycle in Cycle.objects.filter(thought_stored_at__isnull=True).order_by("started_at", "id")[:limit]:
        if not store_thought(cycle):
            break
        stored += 1
    return stored

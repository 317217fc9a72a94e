"""Gate settings from the environment: the connections by the names every part
uses (`NATS_URL`, `REDIS_URL`), everything else prefixed `CIO_` (README, Configuration)."""

import os
import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX
from cio_kernel.audit_stream import (
    AUDIT_STREAM,
    AUDIT_SUBJECT_PREFIX,
    DEFAULT_DUPLICATE_WINDOW_S,
    DEFAULT_EXPECTED_RATE_PER_DAY,
    DEFAULT_RETENTION_HOURS,
    bytes_for,
    retention_shortfall,
)
from cio_kernel.defaults import LOCAL_NATS_URL, LOCAL_REDIS_URL
from cio_kernel.intake_stream import (
    CLAIM_SUBJECT_PREFIX,
    DECISION_SUBJECT_PREFIX,
    INTAKE_CLAIMS_STREAM,
    INTAKE_CONSUMER,
    INTAKE_STREAM,
)
from cio_kernel.intake_stream import DEFAULT_MAX_AGE_S as INTAKE_MAX_AGE_S
from cio_kernel.intake_stream import DEFAULT_MAX_BYTES as INTAKE_MAX_BYTES
from cio_kernel.redis_clients import SentinelConfig
from cio_kernel.shadow import DEFAULT_MAX_AGE_S as SHADOW_MAX_AGE_S
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM, SHADOW_SUBJECT_PART


def _default_gate_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class GateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIO_", extra="ignore")

    nats_url: str = Field(LOCAL_NATS_URL, validation_alias=AliasChoices("NATS_URL", "nats_url"))
    redis_url: str = Field(LOCAL_REDIS_URL, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    # Redis through Sentinel (docs/redis-ha.md): comma-separated host:port; empty, `redis_url`'s host is used. The
    # user, password and database stay `redis_url`'s; the Sentinels may have a login of their own.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "cio"
    redis_sentinel_username: str = ""
    redis_sentinel_password: SecretStr = SecretStr("")
    redis_sentinel_password_file: str = ""
    gate_id: str = Field(default_factory=_default_gate_id)
    queue_group: str = "cio-gate"
    # Reply inboxes for this gate's own requests (JetStream API, PubAcks): `_INBOX.gate` under deploy/access.py.
    nats_inbox_prefix: str = "_INBOX"
    decision_budget_ms: float = Field(200.0, gt=0)
    # An intent that waited longer than this in the gate's queue is answered RETRY_SAFE/OVERLOADED unparsed.
    shed_after_ms: float = Field(50.0, gt=0)
    # uvloop (libuv) reads, writes and schedules in C: less CPU per intent than the standard loop (README's
    # benchmarks). `asyncio` runs the standard loop, e.g. to rule uvloop out when chasing a fault.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    policy_refresh_s: float = Field(2.0, gt=0)
    policy_max_age_s: float = Field(30.0, gt=0)
    # A gate with no version floor on its spool volume (brand-new) listens this long for its peers' heartbeats
    # and the control plane's notices before adopting anything (docs/policy.md, "No rollback"); 0: no wait.
    policy_floor_wait_s: float = Field(3.0, ge=0)
    # The control plane's public key(s), base64 (comma-separated during a rotation), else read from the file.
    policy_public_key: str = ""
    policy_public_key_file: Path = Path(".cio/policy-signing.pub")
    signal_source: str = "petrosa-cio"
    signal_subject_prefix: str = "signals.trading"
    heartbeat_interval_s: float = Field(1.0, gt=0)
    fleet_heartbeat_interval_s: float = Field(10.0, gt=0)
    stuck_after_s: float = Field(5.0, gt=0)
    # Announced in every heartbeat: how long bots (cio_client) may miss heartbeats before going conservative.
    bot_heartbeat_timeout_s: float = Field(3.0, gt=0)
    max_intent_bytes: int = Field(64 * 1024, gt=0)
    # Checked on the raw bytes before parsing (gate/runtime/prescan.py): deeper, busier or longer is VAL_ERR.
    max_intent_depth: int = Field(32, gt=0, le=200)  # the audit serialiser stops at 254 levels
    max_intent_members: int = Field(2048, gt=0)  # keys, array elements and containers
    max_intent_string_bytes: int = Field(16 * 1024, gt=0)
    # Each strategy's share of this gate (gate/runtime/fair_share.py), in work units (1 per intent + 1 per 512
    # bytes): refilled per second, and the most it may hold (its slice of the queue). Over it: STRATEGY_OVER_BUDGET.
    strategy_budget_per_s: float = Field(2000.0, gt=0)
    strategy_budget_burst: float = Field(2000.0, gt=0)
    # What every key the shared identity can mint (claimed ids, subject tokens no strategy owns) may spend together,
    # as a multiple of one strategy's share: changing the claimed id per intent buys no more than this.
    strategy_budget_open_share: float = Field(1.5, gt=0)
    dedupe_id_ttl_s: float = Field(86_400.0, gt=0)
    audit_stream: str = AUDIT_STREAM
    audit_subject_prefix: str = AUDIT_SUBJECT_PREFIX
    audit_spool_dir: Path = Path(".cio/gate-spool")
    audit_ack_timeout_s: float = Field(5.0, gt=0)
    audit_duplicate_window_s: float = Field(DEFAULT_DUPLICATE_WINDOW_S, gt=0)
    audit_batch_window_ms: float = Field(10.0, ge=0)
    # The stream's limits (docs/audit.md, Retention): events the audit store has not taken yet wait this long /
    # up to this size, then the oldest are dropped; the ingest warns at half of either. Both derive from the
    # stated window and rate (docs/nats-cluster.md, "Sizing CIO_AUDIT"); 0 = derive, anything else overrides
    # (and `audit_retention_warning` says when the size cannot hold the age at the stated rate).
    audit_stream_retention_hours: float = Field(DEFAULT_RETENTION_HOURS, gt=0)
    audit_expected_rate_per_day: float = Field(DEFAULT_EXPECTED_RATE_PER_DAY, gt=0)
    audit_max_age_s: float = Field(0.0, ge=0)
    audit_max_bytes: int = Field(0, ge=0)
    # Copies of each event on a NATS cluster (3 in production, docs/nats-cluster.md); 1 on a single server.
    audit_replicas: int = Field(1, ge=1, le=5)
    # The gates' audit checkpoint key (docs/audit.md, Tamper evidence): Ed25519, base64 of the raw 32 bytes, held by
    # gates only. The head of the gate's chain is signed every `audit_checkpoint_interval_s` (when it moved) and
    # published to `audit_checkpoint_stream`, outside the audit store.
    audit_signing_key_file: Path | None = Path(".cio/audit-signing.key")
    audit_checkpoint_stream: str = CHECKPOINT_STREAM
    audit_checkpoint_subject_prefix: str = CHECKPOINT_SUBJECT_PREFIX
    audit_checkpoint_interval_s: float = Field(1.0, gt=0)
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    shutdown_timeout_s: float = Field(10.0, gt=0)
    # Alerts (docs/alerting.md): each kind at most once per `alert_every_s`; budget timeouts and sheds above
    # `alert_timeouts_per_minute` in a minute raise one.
    alert_every_s: float = Field(60.0, gt=0)
    alert_timeouts_per_minute: int = Field(50, gt=0)
    # Producers that never listen (docs/contracts.md): plain publishes are decided from the `intake_stream`
    # (created at start), not on the fast path; off, the gate decides them on the fast path as they arrive (and
    # one published while no gate listens is lost).
    intake_stream_enabled: bool = True
    intake_stream: str = INTAKE_STREAM
    intake_claims_stream: str = INTAKE_CLAIMS_STREAM
    intake_consumer: str = INTAKE_CONSUMER
    intake_claim_subject_prefix: str = CLAIM_SUBJECT_PREFIX
    # Kept this long / up to this size, then the oldest are dropped (an alert says so).
    intake_max_age_s: float = Field(INTAKE_MAX_AGE_S, gt=0)
    intake_max_bytes: int = Field(INTAKE_MAX_BYTES, gt=0)
    # A stored intent is looked at only once it is this old: the claim of a request answered on the fast path
    # must have landed by then.
    intake_hold_ms: float = Field(500.0, ge=0)
    # A plain-published intent is decided (and may be promoted) while younger than this, counted from when the
    # stream stored it; RETRY_SAFE is retried meanwhile (after `intake_retry_s`, doubling up to 5 s), then
    # recorded once, unpromoted.
    intake_fresh_s: float = Field(60.0, gt=0)
    intake_retry_s: float = Field(0.5, gt=0)
    # An intent a gate took and did not settle (it died) goes to another gate after this.
    intake_ack_wait_s: float = Field(10.0, gt=0)
    intake_batch: int = Field(64, gt=0, le=1000)
    # Every decision's envelope is also published on `<prefix>.<strategy key>`.
    decision_subject_prefix: str = DECISION_SUBJECT_PREFIX
    # Shadow mode (docs/deploy.md, "Shadow mode"): decide and audit every intent, marked `shadow`, beside the fleet's
    # current CIO, and never promote, answer, announce or beat. Intents are heard in `<queue_group>-shadow`, never in
    # the production queue group; the intake stream is not used; the old CIO's signals are recorded for the report.
    gate_shadow: bool = False
    shadow_signal_stream: str = SHADOW_SIGNAL_STREAM
    shadow_signal_max_age_s: float = Field(SHADOW_MAX_AGE_S, gt=0)
    # The probes and metrics server (gate/runtime/probes.py, docs/metrics.md): no port (0), no server.
    gate_health_host: str = "127.0.0.1"
    gate_health_port: int = Field(0, ge=0, le=65535)
    log_level: str = "INFO"
    version: str = "0.1.0"

    @property
    def uses_intake_stream(self) -> bool:
        """Never in shadow mode: the stream's shared consumer would take plain publishes from the serving gates, and
        intents it stored during the shadow run would be decided again, and promoted, by the first serving gate."""
        return self.intake_stream_enabled and not self.gate_shadow

    @property
    def intake_queue_group(self) -> str:
        """The queue group the intake subjects are heard in: a shadow gate never takes an intent from the serving
        gates (or the old CIO) that share the production group."""
        return f"{self.queue_group}-shadow" if self.gate_shadow else self.queue_group

    @property
    def audit_decision_prefix(self) -> str:
        """Where decisions are audited: a shadow gate's under `<prefix>.shadow.`, in the same stream, so nothing
        listening for serving decisions (the Strategist's rejection bursts) counts them."""
        return f"{self.audit_subject_prefix}.{SHADOW_SUBJECT_PART}" if self.gate_shadow else self.audit_subject_prefix

    def redis_sentinel(self) -> SentinelConfig | None:
        return SentinelConfig.parse(
            self.redis_sentinels,
            self.redis_sentinel_master,
            self.redis_sentinel_username,
            self.redis_sentinel_password.get_secret_value(),
            self.redis_sentinel_password_file,
        )

    @model_validator(mode="after")
    def _derive_audit_limits(self) -> Self:
        if not self.audit_max_age_s:
            self.audit_max_age_s = self.audit_stream_retention_hours * 3600.0
        if not self.audit_max_bytes:
            self.audit_max_bytes = bytes_for(self.audit_max_age_s / 3600.0, self.audit_expected_rate_per_day)
        return self

    @property
    def audit_retention_warning(self) -> str | None:
        return retention_shortfall(self.audit_max_age_s, self.audit_max_bytes, self.audit_expected_rate_per_day)

    @model_validator(mode="after")
    def _intake_windows(self) -> Self:
        # An intent must still be in the stream when its freshness ends, or it would vanish without a record.
        if self.intake_fresh_s + self.intake_hold_ms / 1000.0 + self.intake_retry_s >= self.intake_max_age_s:
            raise ValueError("CIO_INTAKE_FRESH_S (+ hold and retry) must be below CIO_INTAKE_MAX_AGE_S")
        return self

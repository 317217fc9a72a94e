"""Who may do what on NATS and Redis: one table, rendered into the servers' own configuration.

Every component has its own identity with least privilege (docs/access.md):

- a strategy publishes intents and reads its own replies and the heartbeats, nothing else; a strategy with an
  identity of its own publishes only on its own intake subject, which the shared identity may not use;
- every identity reads replies only in its own inbox, `_INBOX.<identity>.>`: none can read another's;
- only gates publish signals, heartbeats, promotion notices, latch trips and audit events, and only gates and
  the audit ingest touch the `CIO_AUDIT` stream through the JetStream API;
- only the control plane publishes policy updates and latch releases;
- only the snapshot bridge (`bridges/engine_state`, which reads the trade engine's state API) publishes
  portfolio snapshots; the trade engine itself publishes nothing to the CIO;
- the canary may only ping.

`python -m deploy.access` writes `deploy/nats/nats-server.conf` and `deploy/redis/users.acl` from this table
(a test keeps them in step). Neither holds a secret: the NATS file includes `credentials.conf`, and the Redis
file has placeholders; `write_local_servers` renders both with hashes for a state folder, from passwords it
generates on first run and keeps (mode 0600) in `<state>/service-credentials.json`.
"""

import argparse
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from cio_kernel import subjects
from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX
from cio_kernel.audit_stream import AUDIT_STREAM, AUDIT_SUBJECT_PREFIX
from cio_kernel.contracts.identity import strategy_key, strategy_subject
from cio_kernel.intake_stream import (
    CLAIM_SUBJECT_PREFIX,
    DECISION_SUBJECT_PREFIX,
    INTAKE_CLAIMS_STREAM,
    INTAKE_CONSUMER,
    INTAKE_STREAM,
)
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM
from deploy.generated import write_or_check

ROOT = Path(__file__).resolve().parents[1]
NATS_CONFIG = ROOT / "deploy" / "nats" / "nats-server.conf"
REDIS_ACL = ROOT / "deploy" / "redis" / "users.acl"
CREDENTIALS_FILE = "service-credentials.json"
SIGNALS = "signals.trading.>"


@dataclass(frozen=True)
class NatsRole:
    """NATS permissions for one identity. Its private reply inboxes live under `_INBOX.<name>.`: a client that
    makes requests connects with `inbox_prefix="_INBOX.<name>"` (nats-py), and no identity may subscribe to
    another's. Today's fleet publishes without listening, so it needs no inbox at all."""

    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False  # may answer requests it receives (on their reply subjects, once)
    deny_publish: tuple[str, ...] = ()  # carved out of `publish` (NATS applies deny over allow)
    # Carved out of `subscribe`: NATS also withholds these subjects' messages from a wildcard subscription.
    deny_subscribe: tuple[str, ...] = ()
    # False for the identity anyone may take (the cluster's `no_auth_user`): NATS hands a client without
    # credentials that user's stored password, which matches only when it is not a hash, so it has none.
    password: bool = True

    @property
    def inbox_prefix(self) -> str:
        return f"_INBOX.{self.name}"

    @property
    def password_variable(self) -> str:
        return f"CIO_NATS_{self.name.upper().replace('-', '_')}_PASSWORD"

    def subscriptions(self) -> tuple[str, ...]:
        return (*self.subscribe, f"{self.inbox_prefix}.>")


def _js_api(stream: str, *operations: str) -> tuple[str, ...]:
    return tuple(f"$JS.API.{operation}.{stream}" for operation in operations)


def decision_subject(key: str) -> str:
    """Where the gates publish the decisions on a strategy's intents (docs/contracts.md)."""
    return f"{DECISION_SUBJECT_PREFIX}.{key}"


# The stream path (docs/contracts.md, "Producers that never listen"): the gates' shared consumer of the intake
# stream, by its exact name, and direct reads of the claims stream (the only read of it anyone makes).
_INTAKE_API = (
    *_js_api(INTAKE_STREAM, "STREAM.CREATE", "STREAM.UPDATE", "STREAM.INFO"),
    *_js_api(INTAKE_CLAIMS_STREAM, "STREAM.CREATE", "STREAM.UPDATE", "STREAM.INFO"),
    f"$JS.API.CONSUMER.CREATE.{INTAKE_STREAM}.{INTAKE_CONSUMER}",
    f"$JS.API.CONSUMER.INFO.{INTAKE_STREAM}.{INTAKE_CONSUMER}",
    f"$JS.API.CONSUMER.MSG.NEXT.{INTAKE_STREAM}.{INTAKE_CONSUMER}",
    f"$JS.ACK.{INTAKE_STREAM}.{INTAKE_CONSUMER}.>",
    f"$JS.API.DIRECT.GET.{INTAKE_CLAIMS_STREAM}.{CLAIM_SUBJECT_PREFIX}.>",
)


def strategy_identity(key: str) -> NatsRole:
    """A strategy's own identity: it may publish only on `cio.intent.trading.<key>`, which the shared `strategy`
    identity may not; a policy that marks the strategy `own_identity` admits its intents only there, so the
    subject proves who sent them (docs/access.md)."""
    if strategy_key(key) != key:
        raise ValueError(f"a dedicated strategy is named by its key: {strategy_key(key)!r}, not {key!r}")
    return NatsRole(
        f"strategy-{key}",
        publish=(strategy_subject(key),),
        subscribe=(subjects.GATE_HEARTBEAT, subjects.FLEET_HEARTBEAT, decision_subject(key)),
    )


# Strategies with an identity of their own, by key (the fleet's shared `strategy` identity remains for the others).
# Mark each `own_identity: true` in the policy, too: the gate then refuses its intents on any other subject.
DEDICATED_STRATEGIES = ("momentum_pulse",)

NATS_ROLES: dict[str, NatsRole] = {
    role.name: role
    for role in (
        NatsRole(
            "gate",
            publish=(
                SIGNALS,
                subjects.GATE_HEARTBEAT,
                subjects.FLEET_HEARTBEAT,
                subjects.GATE_PROMOTION,
                subjects.RISK_LATCH,
                f"{AUDIT_SUBJECT_PREFIX}.>",
                *_js_api(AUDIT_STREAM, "STREAM.CREATE", "STREAM.INFO"),
                # Signed checkpoints of its audit chain (docs/audit.md): only gates publish them.
                f"{CHECKPOINT_SUBJECT_PREFIX}.>",
                *_js_api(CHECKPOINT_STREAM, "STREAM.CREATE", "STREAM.INFO"),
                # A shadow gate records the serving CIO's promotions for the report (docs/deploy.md, Shadow mode).
                *_js_api(SHADOW_SIGNAL_STREAM, "STREAM.CREATE", "STREAM.INFO"),
                subjects.ALERTS,
                # Only gates claim requests (a claim makes the stream path skip an intent) and publish decisions.
                f"{CLAIM_SUBJECT_PREFIX}.>",
                f"{DECISION_SUBJECT_PREFIX}.>",
                *_INTAKE_API,
            ),
            subscribe=(
                *subjects.INTENT_SUBJECTS,
                subjects.STRATEGIST_UPDATE,
                subjects.PORTFOLIO_SNAPSHOT,
                subjects.GATE_PING,
                subjects.GATE_PROMOTION,
                subjects.RISK_LATCH,
                subjects.TRADING_STATE,
                subjects.GATE_HEARTBEAT,  # peers' signed version floors (docs/policy.md, "No rollback")
            ),
            allow_responses=True,
        ),
        # It hears gate heartbeats so that the break glass, which uses this identity, can confirm a halt.
        NatsRole(
            "control",
            # Alerts: an older policy put back in Redis (docs/policy.md, "No rollback").
            publish=(
                subjects.STRATEGIST_UPDATE,
                subjects.RISK_LATCH,
                subjects.TRADING_STATE,
                subjects.ALERTS,
                # The shadow report (admin page, `manage.py shadow_report`) reads the recorded promotions with an
                # ephemeral consumer; it can neither change nor purge the stream.
                *_js_api(SHADOW_SIGNAL_STREAM, "STREAM.INFO", "CONSUMER.CREATE"),
                f"$JS.API.CONSUMER.CREATE.{SHADOW_SIGNAL_STREAM}.>",
                f"$JS.API.CONSUMER.INFO.{SHADOW_SIGNAL_STREAM}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{SHADOW_SIGNAL_STREAM}.>",
                # The web's /metrics measures the ingest's backlog (docs/metrics.md): read-only, as the ingest
                # measures it (stream info, consumer info, its oldest message); never create, purge or delete.
                *_js_api(AUDIT_STREAM, "STREAM.INFO", "STREAM.MSG.GET"),
                f"$JS.API.CONSUMER.INFO.{AUDIT_STREAM}.>",
            ),
            # Every strategy's decisions, for dashboards (docs/contracts.md, "Producers that never listen").
            subscribe=(subjects.GATE_HEARTBEAT, f"{DECISION_SUBJECT_PREFIX}.>"),
        ),
        NatsRole(
            "audit",
            publish=(
                *_js_api(AUDIT_STREAM, "STREAM.INFO", "STREAM.MSG.GET"),
                f"$JS.API.CONSUMER.CREATE.{AUDIT_STREAM}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{AUDIT_STREAM}.>",
                f"$JS.API.CONSUMER.INFO.{AUDIT_STREAM}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{AUDIT_STREAM}.>",
                f"$JS.ACK.{AUDIT_STREAM}.>",
                # The gates' signed checkpoints: copied into the store, and read by audit_verify.
                *_js_api(CHECKPOINT_STREAM, "STREAM.INFO", "STREAM.MSG.GET"),
                f"$JS.API.CONSUMER.CREATE.{CHECKPOINT_STREAM}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{CHECKPOINT_STREAM}.>",
                f"$JS.API.CONSUMER.INFO.{CHECKPOINT_STREAM}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{CHECKPOINT_STREAM}.>",
                f"$JS.ACK.{CHECKPOINT_STREAM}.>",
                subjects.ALERTS,  # the stream's backlog near its limits
            ),
            subscribe=(subjects.RISK_LATCH,),  # latch trips become incidents
        ),
        NatsRole(
            "strategy",
            publish=subjects.INTENT_SUBJECTS,
            # Decisions on the shared identity's strategies (its members can already read each other's replies in
            # `_INBOX.strategy`), not those of a strategy with an identity of its own.
            subscribe=(subjects.GATE_HEARTBEAT, subjects.FLEET_HEARTBEAT, f"{DECISION_SUBJECT_PREFIX}.>"),
            deny_publish=tuple(strategy_subject(key) for key in DEDICATED_STRATEGIES),
            deny_subscribe=tuple(decision_subject(key) for key in DEDICATED_STRATEGIES),
        ),
        # Today's engine publishes nothing to the CIO (its book is read by the snapshot bridge below).
        NatsRole(
            "tradeengine",
            publish=(),
            subscribe=(SIGNALS, subjects.FLEET_HEARTBEAT, subjects.GATE_HEARTBEAT),
        ),
        # The snapshot bridge (bridges/engine_state): the only source of portfolio snapshots; alerts when it
        # cannot read the engine. It hears nothing.
        NatsRole("snapshot-bridge", publish=(subjects.PORTFOLIO_SNAPSHOT, subjects.ALERTS), subscribe=()),
        NatsRole("marketdata", publish=(subjects.MARKET_REGIME,), subscribe=()),
        # The Strategist's listener: it only hears its inputs and triggers (rejected decisions as they are audited).
        NatsRole(
            "strategist",
            publish=(),
            subscribe=(
                subjects.MARKET_REGIME,
                subjects.PORTFOLIO_SNAPSHOT,
                f"{AUDIT_SUBJECT_PREFIX}.rejected",
                subjects.ALERTS,
            ),
        ),
        NatsRole("canary", publish=(subjects.GATE_PING,), subscribe=(subjects.GATE_HEARTBEAT,)),
        # The release Job (`manage.py prepare_release`): creates the audit streams with the release's limits and
        # replicas, and updates `CIO_AUDIT`'s limits; it can neither publish an event nor delete or purge.
        NatsRole(
            "release",
            publish=(
                *_js_api(AUDIT_STREAM, "STREAM.CREATE", "STREAM.UPDATE", "STREAM.INFO"),
                *_js_api(CHECKPOINT_STREAM, "STREAM.CREATE", "STREAM.INFO"),
            ),
            subscribe=(),
        ),
        # The alerting bridge: it hears every alert; it publishes nothing.
        NatsRole("alerting", publish=(), subscribe=(subjects.ALERTS,)),
        *(strategy_identity(strategy_id) for strategy_id in DEDICATED_STRATEGIES),
    )
}


@dataclass(frozen=True)
class RedisRole:
    name: str
    rules: str  # Valkey/Redis ACL rules after the password

    @property
    def password_variable(self) -> str:
        return f"CIO_REDIS_{self.name.upper()}_PASSWORD"


_CONNECTION = "+ping +client|setinfo +client|setname +client|id +select +info"
_TRANSACTIONS = "+watch +unwatch +multi +exec +discard"
REDIS_ROLES: dict[str, RedisRole] = {
    role.name: role
    for role in (
        # The gate reads the policy (never writes it), keeps its heartbeat and trips latches. SET only on its
        # heartbeat (a selector): SET on `risk:latches` would replace the whole hash with a string, erasing every
        # latch and leaving no gate able to store one again (docs/access.md, "Gate state in Redis").
        RedisRole(
            "gate",
            f"resetkeys %R~policy:active ~risk:latches resetchannels -@all "
            f"+get +hget +hgetall +hlen +hset {_TRANSACTIONS} {_CONNECTION} (~gate:heartbeat:* +get +set)",
        ),
        # The control plane writes the policy through the check-and-set script, reads heartbeats (PTTL: a key kept
        # without expiry is no gate's; STRLEN: a huge one is never fetched), releases latches (signed with the policy
        # key: docs/policy.md, latches). SET (the script's write) only on the policy, as for the gate. It reads the
        # Strategist's sealed portfolio summary (never writes it) for the cockpit's book panel (docs/cockpit.md).
        RedisRole(
            "control",
            f"resetkeys ~policy:active %R~gate:heartbeat:* %R~strategist:portfolio ~risk:latches resetchannels -@all "
            f"+get +eval +evalsha +scan +mget +strlen +pttl +hget +hgetall +hlen +hset {_TRANSACTIONS} {_CONNECTION} "
            f"(~policy:active +set)",
        ),
        # The Strategist (listener and cycles): its own keys (inputs, cycle lock, token budget, debouncing) and
        # reading the active policy (a proposal's version number starts above it).
        RedisRole(
            "strategist",
            f"resetkeys %R~policy:active ~strategist:* resetchannels -@all "
            f"+get +set +del +hget +hset +hgetall +incrby +expire +pexpire +pttl +eval +evalsha {_CONNECTION}",
        ),
        # Celery's broker (kombu's Redis transport): its queues, bindings and unacknowledged messages; nothing of
        # the policy's, the gates' or the Strategist's. No pub/sub and no pidbox reply queues: workers run without
        # remote control, events or gossip, so there is no control channel to reach (issue 17).
        RedisRole(
            "celery",
            "resetkeys ~celery* ~alerts* ~_kombu.* ~unacked* resetchannels -@all "
            f"+@read +@write +@list +@set +@sortedset +@hash +@string +@keyspace +@scripting "
            f"+time -@dangerous -@pubsub {_TRANSACTIONS} {_CONNECTION}",
        ),
        # The alerting bridge's deduplication windows: it reads a window's expiry too, to tell its own (signed,
        # expiring within the window) from anything planted there (alerting/dedup.py).
        RedisRole("alerting", f"resetkeys ~alerting:* resetchannels -@all +get +set +pttl {_CONNECTION}"),
        # The live audit feed (Channels' Redis layer: the ingest sends, the web server's websockets receive):
        # its own keys only, the data commands and scripts it runs, nothing administrative.
        RedisRole(
            "feed",
            "resetkeys ~asgi* resetchannels -@all +@read +@write +@scripting -@dangerous "
            f"{_TRANSACTIONS} {_CONNECTION}",
        ),
        # Redis high availability (docs/redis-ha.md): a replica logs in to its primary as `replica` (`masteruser`)
        # to copy it, and nothing else; the Sentinels log in to every server as `sentinel` to watch it, hold
        # their election on `__sentinel__:hello` and promote a replica (REPLICAOF, CONFIG REWRITE, CLIENT KILL of
        # the clients of a demoted primary), and nothing of the data.
        RedisRole("replica", f"resetkeys resetchannels -@all +psync +replconf {_CONNECTION}"),
        RedisRole(
            "sentinel",
            "resetkeys resetchannels &__sentinel__:hello -@all +multi +exec +slaveof +replicaof +config|rewrite "
            f"+role +publish +subscribe +client|kill +script|kill {_CONNECTION}",
        ),
    )
}


# Where the cluster's `no_auth_user` lands (deploy/nats_cluster.py, docs/nats-cluster.md): today's fleet connects
# without credentials; it may publish intents on the shared subjects as the `strategy` identity does and hear what
# today's engine hears (signals, heartbeats), nothing else, until each client moves to its own identity. Only the
# cluster has it: the single server (`make up`, the tests) refuses every client without credentials.
NO_AUTH_ROLE = NatsRole(
    "fleet",
    publish=subjects.INTENT_SUBJECTS,
    subscribe=(SIGNALS, subjects.FLEET_HEARTBEAT, subjects.GATE_HEARTBEAT),
    deny_publish=tuple(strategy_subject(key) for key in DEDICATED_STRATEGIES),
    password=False,
)
NO_AUTH_USER = NO_AUTH_ROLE.name


@dataclass(frozen=True)
class WorkloadAccess:
    """What one workload of deploy/workloads.py connects to, and as whom: the Kubernetes manifests take its
    credentials (Secrets) and its NetworkPolicy from here, so a workload reaches exactly the servers whose
    permissions this table gives it (deploy/k8s)."""

    nats: str | None  # its NATS identity (a key of NATS_ROLES)
    redis: tuple[tuple[str, str], ...] = ()  # (environment variable, Redis identity) pairs
    database: bool = False  # DATABASE_URL: the control plane's database (Django)
    audit_store: bool = False  # MONGODB_URI: the audit store
    external: tuple[str, ...] = ()  # services outside the cluster: "smtp", "https" (LLM, Grafana), "tradeengine"


_STRATEGIST_REDIS = (("REDIS_URL", "strategist"), ("CIO_STRATEGIST_REDIS_URL", "strategist"))
_BROKER = (("CIO_CELERY_BROKER_URL", "celery"),)
_FEED = (("CIO_CHANNELS_REDIS_URL", "feed"),)
WORKLOAD_ACCESS: dict[str, WorkloadAccess] = {
    "gate": WorkloadAccess("gate", (("REDIS_URL", "gate"),)),
    "web": WorkloadAccess("control", (("REDIS_URL", "control"), *_FEED, *_BROKER), True, True, ("tradeengine",)),
    "migrate": WorkloadAccess("release", (), True, True),
    "reconcile": WorkloadAccess("control", (("REDIS_URL", "control"),), True, True),
    "ingest": WorkloadAccess("audit", _FEED, True, True),
    "worker": WorkloadAccess("strategist", (*_STRATEGIST_REDIS, *_BROKER), True, True, ("https", "smtp")),
    "beat": WorkloadAccess(None, _BROKER, True),
    "strategist": WorkloadAccess("strategist", (*_STRATEGIST_REDIS, *_BROKER), True, True),
    "alerts": WorkloadAccess(
        "alerting", (("CIO_ALERTING_REDIS_URL", "alerting"), *_BROKER), True, True, ("smtp", "https")
    ),
    "snapshot-bridge": WorkloadAccess("snapshot-bridge", external=("tradeengine",)),
    "audit-verify": WorkloadAccess("audit", (), True, True),
    "canary": WorkloadAccess("canary", external=("smtp", "https")),
}


# -- rendering ---------------------------------------------------------------------------------------------------
def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _publish_permissions(role: NatsRole) -> str:
    if not role.publish:
        return '    publish: { deny: [">"] }'
    deny = f", deny: {_list(role.deny_publish)}" if role.deny_publish else ""
    return f"    publish: {{ allow: {_list(role.publish)}{deny} }}"


def _subscribe_permissions(role: NatsRole) -> str:
    deny = f", deny: {_list(role.deny_subscribe)}" if role.deny_subscribe else ""
    return f"    subscribe: {{ allow: {_list(role.subscriptions())}{deny} }}"


def render_nats_config() -> str:
    lines = [
        "# Generated by `python -m deploy.access` from the table in deploy/access.py: edit it there and regenerate.",
        "# Authorization only: listen address, JetStream and storage come from the command line",
        "# (`nats-server -c nats-server.conf -p PORT -js -sd DIR`). Password hashes (bcrypt) are variables",
        "# defined in credentials.conf next to this file, which `make up` generates into its state folder.",
        'include "credentials.conf"',
        "",
        "authorization {",
        "  users = [",
    ]
    lines += render_nats_users()
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def render_nats_users(indent: str = "    ", extra: tuple[NatsRole, ...] = ()) -> list[str]:
    """Every identity's user block (the single server's `authorization` and the cluster's account share them)."""
    lines: list[str] = []
    for role in (*NATS_ROLES.values(), *extra):
        lines += [
            "{",
            f'  user: "{role.name}"',
            *([f"  password: ${role.password_variable}"] if role.password else []),
            "  permissions: {",
            # An empty allow list would mean "no restriction" to NATS: an identity that publishes nothing is denied all.
            _publish_permissions(role),
            _subscribe_permissions(role),
        ]
        if role.allow_responses:
            lines.append("    allow_responses: true")
        lines += ["  }", "}"]
    return [indent + line for line in lines]


def render_redis_acl_template() -> str:
    # ACL files take no comments (docs/access.md explains this one): generated from the table in deploy/access.py;
    # `<..._SHA256>` is the hex SHA-256 of that component's password; the default user is off.
    lines = ["user default off"]
    lines += [f"user {role.name} on #<{role.password_variable}_SHA256> {role.rules}" for role in REDIS_ROLES.values()]
    return "\n".join(lines) + "\n"


def render_nats_credentials(passwords: dict[str, str], cost: int = 10) -> str:
    out = ["# Generated: bcrypt hashes of each component's NATS password (the passwords are not stored here)."]
    for role in (role for role in NATS_ROLES.values() if role.password):
        hashed = bcrypt.hashpw(passwords[f"nats:{role.name}"].encode(), bcrypt.gensalt(cost)).decode()
        out.append(f'{role.password_variable}: "{hashed}"')
    return "\n".join(out) + "\n"


def render_redis_acl(passwords: dict[str, str]) -> str:
    text = render_redis_acl_template()
    for role in REDIS_ROLES.values():
        digest = hashlib.sha256(passwords[f"redis:{role.name}"].encode()).hexdigest()
        text = text.replace(f"<{role.password_variable}_SHA256>", digest)
    return text


# -- a state folder's credentials and server files -----------------------------------------------------------------
def load_or_create_credentials(state: Path) -> dict[str, str]:
    """`{"nats:<role>": password, "redis:<role>": password}`, created on first use and kept (0600)."""
    path = state / CREDENTIALS_FILE
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = [f"nats:{name}" for name in NATS_ROLES] + [f"redis:{name}" for name in REDIS_ROLES]
    missing = [key for key in wanted if key not in passwords]
    for key in missing:
        passwords[key] = secrets.token_urlsafe(24)
    if missing or not path.exists():
        path.write_text(json.dumps(passwords, indent=2))
    path.chmod(0o600)
    return passwords


def write_local_servers(state: Path, passwords: dict[str, str], bcrypt_cost: int = 10) -> tuple[Path, Path]:
    """The NATS configuration (with its credentials file) and the Redis ACL file for a state folder."""
    nats_dir = state / "nats-config"
    nats_dir.mkdir(parents=True, exist_ok=True)
    nats_dir.chmod(0o700)
    config = nats_dir / "nats-server.conf"
    config.write_text(render_nats_config())
    credentials = nats_dir / "credentials.conf"
    credentials.write_text(render_nats_credentials(passwords, bcrypt_cost))
    credentials.chmod(0o600)
    acl = state / "redis-users.acl"
    acl.write_text(render_redis_acl(passwords))
    acl.chmod(0o600)
    return config, acl


def nats_url(role: str, port: int, passwords: dict[str, str], host: str = "127.0.0.1") -> str:
    return f"nats://{role}:{passwords[f'nats:{role}']}@{host}:{port}"


def redis_url(role: str, port: int, passwords: dict[str, str], host: str = "127.0.0.1") -> str:
    return f"redis://{role}:{passwords[f'redis:{role}']}@{host}:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files in deploy/ are out of date")
    args = parser.parse_args()
    wanted = {NATS_CONFIG: render_nats_config(), REDIS_ACL: render_redis_acl_template()}
    write_or_check(wanted, "python -m deploy.access", args.check)


if __name__ == "__main__":
    main()

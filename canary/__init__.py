"""The out-of-band canary (`python -m canary`): runs outside the cluster, pings the gate, checks its heartbeat,
policy version and trading state and the web API's health, and raises its own alarm (direct SMTP, an HTTP
webhook) when something is wrong. It also carries the break-glass halt (`python -m canary halt`). It imports
nothing from Django or the gate: only the shared kernel (docs/canary.md)."""

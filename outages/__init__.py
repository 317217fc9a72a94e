"""Outages the control plane sees for itself (a gate gone silent, a gate not running the active policy) and the
incident cases officers work through: open → acknowledged → resolved (docs/alerting.md, "Outages and incidents")."""

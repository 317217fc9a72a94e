"""What can go wrong when the control plane is asked to change something, in the domain's terms.

Services of every app raise these and nothing else; each caller gives them its own answer: the REST layer an HTTP
status and the error envelope (`core/envelope.py`, the one mapping), the admin a message, the Strategist's tasks
and the MCP tools theirs. `code` is the stable, machine-readable reason code every answer carries
(docs/reason-codes.md)."""


class DomainError(Exception):
    code = "DOMAIN_ERROR"
    retry_may_help = False  # whether the same request could succeed later without any change


class PermissionDeniedError(DomainError):
    code = "PERMISSION_DENIED"


class FourEyesError(DomainError):
    code = "FOUR_EYES_VIOLATION"


class InvalidTransitionError(DomainError):
    code = "INVALID_TRANSITION"


class IdempotencyKeyReusedError(InvalidTransitionError):
    """An idempotency key this account already used for another spec: a key names one proposal, never two."""

    code = "IDEMPOTENCY_KEY_REUSED"


class SpecInvalidError(DomainError):
    code = "VAL_ERR"


class OutsideEnvelopeError(DomainError):
    """A proposal by someone who may not approve (an agent, the Strategist) leaves the envelope risk officers
    set; the message lists every breach."""

    code = "OUTSIDE_ENVELOPE"


class NotFoundError(DomainError):
    code = "NOT_FOUND"


class ActivationFailedError(DomainError):
    """Redis or NATS could not take the change; nothing a gate runs changed (it is recorded as a failure)."""

    code = "ACTIVATION_FAILED"
    retry_may_help = True


class StoreUnavailableError(DomainError):
    code = "SERVICE_UNAVAILABLE"
    retry_may_help = True


class UpstreamUnavailableError(DomainError):
    """A service the control plane acts on (the trade engine's configuration API) did not answer or take it."""

    code = "UPSTREAM_UNAVAILABLE"
    retry_may_help = True

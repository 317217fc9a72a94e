"""The HTTP status each domain error answers with; the envelope itself is built in `cio_site.envelope`."""

from policies import errors

HTTP_STATUS: dict[type[errors.DomainError], int] = {
    errors.PermissionDeniedError: 403,
    errors.FourEyesError: 403,
    errors.OutsideEnvelopeError: 403,
    errors.InvalidTransitionError: 409,
    errors.SpecInvalidError: 400,
    errors.NotFoundError: 404,
    errors.ActivationFailedError: 503,
    errors.StoreUnavailableError: 503,
    errors.UpstreamUnavailableError: 503,
}


def http_status(exc: errors.DomainError) -> int:
    return next((status for cls, status in HTTP_STATUS.items() if isinstance(exc, cls)), 500)

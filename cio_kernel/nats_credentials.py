"""A component's NATS user and password, handed to it apart from `NATS_URL`.

A URL with the password inside ends up wherever the URL is printed: today's fleet logs its NATS URL at INFO.
So every component of ours takes `CIO_NATS_USER` and the password from `CIO_NATS_PASSWORD_FILE` (a file only
it can read, one line) or `CIO_NATS_PASSWORD`, and connects to a `NATS_URL` that holds no secret. Credentials
in the URL still work (the tests' secured stack uses them); when both are given, these win.
"""

import os
from collections.abc import Mapping
from pathlib import Path

USER_ENV = "CIO_NATS_USER"
PASSWORD_ENV = "CIO_NATS_PASSWORD"  # noqa: S105 (a variable name, not a password)
PASSWORD_FILE_ENV = "CIO_NATS_PASSWORD_FILE"  # noqa: S105


class NatsCredentialsError(ValueError):
    """The credential settings contradict each other or cannot be read: the process should not start."""


def nats_credentials(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Keyword arguments for `nats.connect` (`user`, `password`), or none when no user is configured."""
    user = environ.get(USER_ENV, "")
    password = environ.get(PASSWORD_ENV, "")
    password_file = environ.get(PASSWORD_FILE_ENV, "")
    if password and password_file:
        raise NatsCredentialsError(f"set {PASSWORD_ENV} or {PASSWORD_FILE_ENV}, not both")
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            # The path may be sensitive only in its content; the reason (missing, unreadable) is what helps.
            raise NatsCredentialsError(f"{PASSWORD_FILE_ENV}: cannot read {password_file}: {exc.strerror}") from None
        if not password:
            raise NatsCredentialsError(f"{PASSWORD_FILE_ENV}: {password_file} is empty")
    if bool(user) != bool(password):
        missing = USER_ENV if password else f"{PASSWORD_FILE_ENV} or {PASSWORD_ENV}"
        raise NatsCredentialsError(f"a NATS user needs its password and a password its user: set {missing}")
    return {"user": user, "password": password} if user else {}

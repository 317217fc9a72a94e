from django.db import models


class FailureWindow(models.Model):
    """Failed attempts counted in one bucket (an account from one address, a token prefix, ...) during a window
    that starts at the first failure. In the database, not a per-process cache: every web worker sees the same
    counts, and authentication already needs the database and nothing else (a Redis outage must not lock officers
    out of the kill switch). The bucket is an HMAC of what it counts, so neither a username (or a password typed
    into the username box) nor any part of a presented token is stored."""

    bucket = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    ends_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.failures} failures until {self.ends_at:%H:%M:%S}"

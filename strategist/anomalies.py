"""What only a holder of a component's credentials could have done to the Strategist, counted per kind in the
database (`Anomaly`), where neither the broker's nor the Strategist's Redis identity can reach. The control
plane's watch turns every new count into an alert (`watchdog.py`)."""

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from strategist.models import Anomaly

log = logging.getLogger(__name__)

# A cycle task that proves nothing: an unknown kind, a detail in the message, no request row, a spent one …
TRIGGER_REFUSED = "trigger_refused"
# The cycle lock or a debounce key without an expiry, with one beyond its maximum, or not sealed by us.
LOCK_ILLEGITIMATE = "lock_illegitimate"
DEBOUNCE_ILLEGITIMATE = "debounce_illegitimate"
# A cached regime entry or portfolio summary whose seal does not verify, or that is out of bounds.
INPUT_REFUSED = "input_refused"

TITLES = {
    TRIGGER_REFUSED: "Strategist: a cycle task was refused (forged or replayed)",
    LOCK_ILLEGITIMATE: "Strategist: an illegitimate cycle lock was broken",
    DEBOUNCE_ILLEGITIMATE: "Strategist: an illegitimate debounce key was broken",
    INPUT_REFUSED: "Strategist: a cached input was refused (unsealed or out of bounds)",
}


def record(kind: str, detail: dict[str, Any]) -> None:
    """Count one. `detail` holds our own words (a reason, a known kind), never text from the message. A failure is
    logged: what it describes was refused either way."""
    now = timezone.now()
    try:
        with transaction.atomic():
            if not Anomaly.objects.filter(kind=kind).update(count=F("count") + 1, last_seen=now, last_detail=detail):
                try:
                    with transaction.atomic():
                        Anomaly.objects.create(kind=kind, count=1, first_seen=now, last_seen=now, last_detail=detail)
                except IntegrityError:  # created meanwhile by another process
                    Anomaly.objects.filter(kind=kind).update(count=F("count") + 1, last_seen=now, last_detail=detail)
    except Exception:
        log.exception("anomaly %s could not be recorded", kind)
    log.warning("Strategist anomaly %s: %s", kind, detail)


def count(kind: str) -> int:
    row = Anomaly.objects.filter(kind=kind).first()
    return row.count if row is not None else 0

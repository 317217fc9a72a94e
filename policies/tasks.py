"""Celery tasks of the policies app: the impact preview's replay, which can take minutes over a long window."""

from celery import shared_task

from policies import impact
from policies.impact import IMPACT_PREVIEW


@shared_task(name=IMPACT_PREVIEW)
def impact_preview(preview_id: str) -> str:
    """Only the preview's id travels through the broker; what to replay is in its row."""
    return str(impact.run(preview_id).state)

"""Prometheus' text exposition format (0.0.4), written by hand: the gate and the web render what they already
count at scrape time, so nothing on a decision's path pays for a metrics library (docs/metrics.md)."""

import math
from collections.abc import Iterable, Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(labels: Labels | None) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class Exposition:
    """Families in the order they are added; each family's HELP and TYPE once, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {_escape(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Labels | None = None) -> None:
        self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def gauge(self, name: str, help_text: str, value: float, labels: Labels | None = None) -> None:
        self.family(name, "gauge", help_text)
        self.sample(name, value, labels)

    def counter(self, name: str, help_text: str, value: float, labels: Labels | None = None) -> None:
        """`name` ends in `_total` (what queries name)."""
        self.family(name, "counter", help_text)
        self.sample(name, value, labels)

    def labelled(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]) -> None:
        self.family(name, kind, help_text)
        for labels, value in samples:
            self.sample(name, value, labels)

    def histogram(
        self, name: str, help_text: str, bounds: Sequence[float], counts: Sequence[int], total: float
    ) -> None:
        """`counts[i]`: observations in bucket i alone (len(bounds) + 1, the last one above every bound); written
        cumulative, as the format wants."""
        self.family(name, "histogram", help_text)
        running = 0
        for bound, count in zip(bounds, counts, strict=False):
            running += count
            self.sample(f"{name}_bucket", running, {"le": _number(float(bound))})
        running += counts[len(bounds)]
        self.sample(f"{name}_bucket", running, {"le": "+Inf"})
        self.sample(f"{name}_sum", total)
        self.sample(f"{name}_count", running)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"

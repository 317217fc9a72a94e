"""Reading deploy/image/Dockerfile: its instructions, and the runtime stage's user, directory, environment, volumes
and command — what tests/deploy/ holds against deploy/workloads.py and what the sandbox starts workloads with."""

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "image" / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    value: str  # continuation lines joined, comments inside them dropped


def instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        found.append(Instruction(keyword.upper(), value.strip()))
        pending = ""
    return found


@dataclass(frozen=True)
class Stage:
    base: str  # what FROM names, build arguments not substituted
    steps: list[Instruction]

    def values(self, keyword: str) -> list[str]:
        return [step.value for step in self.steps if step.keyword == keyword]

    def last(self, keyword: str) -> str:
        values = self.values(keyword)
        if not values:
            raise AssertionError(f"no {keyword} in the stage FROM {self.base}")
        return values[-1]

    def env(self) -> dict[str, str]:
        """`ENV K=V K2=V2` (the only form used here), in order; a later value wins."""
        found: dict[str, str] = {}
        for value in self.values("ENV"):
            for pair in shlex.split(value):
                key, sep, item = pair.partition("=")
                if not sep:
                    raise AssertionError(f"ENV {value!r}: write ENV as KEY=VALUE")
                found[key] = item
        return found

    def exec_form(self, keyword: str) -> list[str]:
        """CMD, VOLUME or ENTRYPOINT written as a JSON array (the exec form: no shell)."""
        value = json.loads(self.last(keyword))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AssertionError(f"{keyword} is not a JSON array of strings: {self.last(keyword)!r}")
        return value


def stages(text: str | None = None) -> list[Stage]:
    found: list[Stage] = []
    for step in instructions(DOCKERFILE.read_text() if text is None else text):
        if step.keyword == "FROM":
            found.append(Stage(step.value, []))
        elif found:
            found[-1].steps.append(step)
    return found


def runtime_stage() -> Stage:
    """The last stage: what the image is."""
    return stages()[-1]

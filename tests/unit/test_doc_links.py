"""Every relative link in the docs resolves: the file exists, and a `#anchor` names a heading of that file.

The production docs were written by several people at once and link each other heavily; a renamed heading or a
moved file breaks a reader's path silently. Checked: README.md, docs/*.md and every README.md under deploy/.
Anchors are GitHub's: the heading lowercased, punctuation other than `-` and `_` dropped, spaces turned into `-`,
and a repeated heading numbered `-1`, `-2`. Links to web addresses are not followed (no network in tests).
"""

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").rglob("README.md")])
# [text](target) and [text](target "title"); images too. Not inside inline code (stripped before matching).
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link or heading in a code example is not one)."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    text = CODE_SPAN.sub(lambda m: m.group(0)[1:-1], heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match is None:
            continue
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def broken_links(doc: Path) -> list[str]:
    broken: list[str] = []
    for line in _prose_lines(doc.read_text(encoding="utf-8")):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (doc.parent / path_part).resolve() if path_part else doc
            if not resolved.exists():
                broken.append(f"{target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor.lower() not in anchors(resolved):
                broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    return broken


def test_the_checker_catches_a_broken_anchor_and_file(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Shadow `mode`: on\n## Twice\n## Twice\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[a](other.md#shadow-mode-on) [b](other.md#twice-1) [c](#here) `[d](nowhere.md)`\n"
        "## Here\n[e](other.md#missing) [f](gone.md) [g](https://example.com/x.md)\n",
        encoding="utf-8",
    )
    assert broken_links(doc) == [
        "other.md#missing (no heading #missing in other.md)",
        "gone.md (no such file)",
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    assert broken_links(doc) == []

from pathlib import Path

from cio_kernel.reason_codes import DESCRIPTIONS, RETRY_SAFE_CODES, ReasonCode, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_code_is_documented_and_upper_snake():
    assert set(DESCRIPTIONS) == set(ReasonCode)
    for code in ReasonCode:
        assert code.value == code.name and code.value.upper() == code.value
        assert DESCRIPTIONS[code].strip()


def test_retry_safe_codes_are_a_subset():
    assert set(ReasonCode) > RETRY_SAFE_CODES


def test_the_published_table_matches_the_code():
    assert (ROOT / "docs" / "reason-codes.md").read_text() == render_markdown(), "run `make docs`"

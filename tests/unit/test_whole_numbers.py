"""The one parser of whole numbers from text someone else wrote (`cio_kernel/numbers.py`): ASCII digits only."""

import pytest

import core.numbers
from cio_kernel.audit_chain import GENESIS, SEQ_HEADER, ChainLink
from cio_kernel.numbers import whole_number


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("7", 7), ("0042", 42), ("18446744073709551616", 2**64)])
def test_ascii_digits_are_a_number(text: str, number: int) -> None:
    assert whole_number(text) == number


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "²",  # `isdigit()` is true, `int()` raises
        "١٢",  # Arabic-Indic: `int()` reads 12
        "１２",  # full width: `int()` reads 12
        "𝟙",  # mathematical bold: `int()` reads 1
        "-1",
        "+1",
        " 1",
        "1 ",
        "1_000",
        "1.0",
        "0x10",
    ],
)
def test_anything_else_is_none(text: str | None) -> None:
    assert whole_number(text) is None


def test_the_control_plane_uses_the_same_parser() -> None:
    assert core.numbers.whole_number is whole_number


def test_a_chain_link_number_respelled_is_no_link() -> None:
    link = ChainLink.first_after("gate-a.1", 2, GENESIS, "cio.audit.decision.approved", b"{}")
    assert ChainLink.from_headers(link.headers()) == link
    for seq in ("³", "٣", "+3", " 3", "0"):
        assert ChainLink.from_headers({**link.headers(), SEQ_HEADER: seq}) is None, seq

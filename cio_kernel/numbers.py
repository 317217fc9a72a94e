"""Whole numbers read from text someone else wrote: NATS headers, Redis values, HTTP headers, query parameters,
command-line arguments, environment variables.

`str.isdigit()` is true for Unicode digits that `int()` refuses ("²": `int` raises, so a check-then-convert crashes
whatever loop read it) and for others `int()` reads ("١٢" is 12: a respelled number then passes a check made on
the canonical spelling). Only ASCII digits spell a number here, so every reader agrees with every writer.
"""


def whole_number(text: str | None) -> int | None:
    """The non-negative integer `text` spells in ASCII digits, or None for anything else (sign, space, "²", "١")."""
    if text and text.isascii() and text.isdigit():
        return int(text)
    return None

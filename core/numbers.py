"""Whole numbers from request text (query parameters, path text, headers).

`str.isdigit()` is true for Unicode digits such as "²" or "١" that `int()` refuses (or reads as Arabic-Indic
numerals), so `text.isdigit() and int(text)` answered a 500 to `?limit=²`. Only ASCII digits are a number here.
"""


def whole_number(text: str | None) -> int | None:
    """The non-negative integer `text` spells in ASCII digits, or None for anything else (sign, space, "²")."""
    if text and text.isascii() and text.isdigit():
        return int(text)
    return None

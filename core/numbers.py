"""Whole numbers from request text (query parameters, path text, headers): the one ASCII-only parser lives in
`cio_kernel/numbers.py`, below the gate, so the gate, the kernel and the control plane read numbers alike."""

from cio_kernel.numbers import whole_number

__all__ = ["whole_number"]

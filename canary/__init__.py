"""The out-of-band canary (`python -m canary`) is not built yet; it has its own issue.

Until then the gate's `cio.gate.ping` and heartbeats (docs/contracts.md) are what an external monitor can use.
"""

"""Long-running adapters between systems we do not own and the CIO's contracts. Each imports at most the kernel
(never Django, never the gate's interior) and runs as `python -m bridges.<name>`."""

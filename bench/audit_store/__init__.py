"""`make bench`, second part: the audit store under the gate's load (`python -m bench.audit_store`, the runner in
`__main__.py`), one module per measured step."""

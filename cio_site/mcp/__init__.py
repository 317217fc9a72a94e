"""MCP for LLM agents at `/mcp` (streamable HTTP, the official `mcp` SDK), in the same ASGI app as Django: the
control plane's capabilities as tools, with the same users, roles and permissions as the REST API, and every
call recorded in the audit store (docs/mcp.md)."""

"""The MCP tools, one module (a `Room`) per domain: policies and gates, the audit trail, the trade engine's
trading configuration. Each tool delegates to the selectors and services REST and admin use."""

"""The read model above the audit trail and the policy history: a decision joined to the policy version it was
made under, that version's events and the Strategist's thought behind it (docs/architecture.md). Neither `audit`
nor `policies` knows the other; this app shows them together: `/api/audit/<decision_id>`, `/api/trace/<trace_id>`,
the admin's decision page and MCP's `trace` tool."""

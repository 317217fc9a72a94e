"""The tool-call log on every backend: each MCP tool call is kept once, newest first."""

from datetime import timedelta

from audit.store.tool_calls import ToolCallLog
from tests.audit.records import T0


def test_every_backend_keeps_the_tool_call_log(audit_store):
    assert isinstance(audit_store, ToolCallLog)


def test_tool_calls_are_kept_once_newest_first(audit_store):
    from audit.records import ToolCall

    calls = [
        ToolCall(
            f"c-{i}",
            T0 + timedelta(seconds=i),
            user,
            "propose_policy_change",
            {"rationale": "x", "n": i},
            outcome,
            code,
            message,
            f"{i:032x}",
            12,
        )
        for i, (user, outcome, code, message) in enumerate(
            [
                ("agent", "ok", None, "v4 proposed"),
                ("agent", "error", "PERMISSION_DENIED", "agent may not activate"),
                ("officer2", "ok", None, "v4 activated"),
            ]
        )
    ]
    assert all(audit_store.insert_tool_call(c) for c in calls)
    assert not audit_store.insert_tool_call(calls[0])
    assert [c.call_id for c in audit_store.recent_tool_calls()] == ["c-2", "c-1", "c-0"]
    [denied, first] = audit_store.recent_tool_calls(user="agent")
    assert (denied.outcome, denied.error_code, denied.arguments) == (
        "error",
        "PERMISSION_DENIED",
        {"rationale": "x", "n": 1},
    )
    assert first.message == "v4 proposed" and first.duration_ms == 12

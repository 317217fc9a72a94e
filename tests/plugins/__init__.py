"""Fixture plugins registered by tests/conftest.py (`pytest_plugins`): one home per shared fixture."""

"""`--database-tests-only`: `make test`'s PostgreSQL pass reruns only what reaches the database.

A test reaches Django's database through pytest-django's fixtures or its `django_db` mark (a child process it
starts is pointed at the test database by them too); a test with neither would run the same code on SQLite and
on PostgreSQL, so the second pass would only spend time on it."""

import pytest

_DATABASE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server"}
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="deselect the tests that use no Django database (make test's PostgreSQL pass)",
    )


def reaches_the_database(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(fixtures & _DATABASE_FIXTURES) or item.get_closest_marker("django_db") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    kept = [item for item in items if reaches_the_database(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if not reaches_the_database(item)])
        items[:] = kept

"""Shared fixtures: a real embedded PostgreSQL, a real Dagster instance on it, fresh databases.

One embedded server serves the whole session (its data in a temporary INGEST_HOME); each test
that needs a warehouse gets a database of its own, so tests never see each other's rows.

Every test is marked ``unit`` or ``integration`` here, so ``pytest -m unit`` runs the fast part
without PostgreSQL. A test is ``integration`` when it uses one of ``SERVER_FIXTURES`` (directly or
through another fixture), carries the marker itself, or starts processes: its code, a module
function it calls or one of its fixtures names ``subprocess``, ``sys.executable`` or the
``dagster dev``/GraphQL helpers. A ``unit`` test that starts a subprocess
anyway fails, naming the rule, so a misclassified test cannot slow the unit selection unnoticed.
"""

from __future__ import annotations

import inspect
import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
from psycopg import sql

_counter = itertools.count()

SERVER_FIXTURES = frozenset(
    {"ingest_home", "pg_admin_url", "warehouse_url", "dagster_pg_url", "instance"}
)
PROCESS_NAMES = ("subprocess", "dagster_dev", "graphql", "sys.executable")


def _code_of(item: pytest.Item) -> list[object]:
    """The test function, the module's functions it calls by name, and its fixtures' functions."""
    function = getattr(item, "function", None)
    if function is None:
        return []
    module = vars(inspect.getmodule(function) or object())
    helpers = [
        module[name] for name in function.__code__.co_names if inspect.isfunction(module.get(name))
    ]
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs.values() if fixture_info else ()
    fixtures = [d.func for defs in definitions for d in defs if d.argname != "_fresh_settings"]
    return [function, *helpers, *fixtures]


def _is_integration(item: pytest.Item) -> bool:
    if item.get_closest_marker("integration"):
        return True
    if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    for code in _code_of(item):
        try:
            source = inspect.getsource(code)  # type: ignore[arg-type]
        except (OSError, TypeError):
            continue
        if any(name in source for name in PROCESS_NAMES):
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_integration(item):
            if not item.get_closest_marker("integration"):
                item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _fresh_settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are read once per process; each test reads the environment it set up."""
    from ingest_assets.settings import reset_settings

    reset_settings()
    if request.node.get_closest_marker("unit"):

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError(
                "a unit test started a subprocess: mark it integration (ingest_assets_tests/"
                "conftest.py)"
            )

        monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def ingest_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("ingest_home")
    previous = os.environ.get("INGEST_HOME")
    os.environ["INGEST_HOME"] = str(home)
    yield home
    from ingest_assets.embedded import stop_embedded

    stop_embedded()
    if previous is None:
        os.environ.pop("INGEST_HOME", None)
    else:
        os.environ["INGEST_HOME"] = previous


@pytest.fixture(scope="session")
def pg_admin_url(ingest_home: Path) -> str:
    """The embedded server (or ``TEST_DATABASE_URL``, an external server's admin URL)."""
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    from ingest_assets.embedded import embedded_url

    return embedded_url("postgres")


def create_database(admin_url: str, prefix: str) -> str:
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlsplit(admin_url)._replace(path=f"/{name}").geturl()


@pytest.fixture
def warehouse_url(pg_admin_url: str) -> str:
    """A fresh, empty warehouse database for one test."""
    return create_database(pg_admin_url, "warehouse")


@pytest.fixture(scope="session")
def dagster_pg_url(pg_admin_url: str) -> str:
    url = create_database(pg_admin_url, "dagster")
    return "postgresql+psycopg2://" + url.removeprefix("postgresql://")


@pytest.fixture(scope="session")
def instance(dagster_pg_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A real Dagster instance whose storage is PostgreSQL, shared by the session."""
    with dg.instance_for_test(
        temp_dir=str(tmp_path_factory.mktemp("dagster_home")),
        overrides={"storage": {"postgres": {"postgres_url": dagster_pg_url}}},
    ) as dagster_instance:
        yield dagster_instance

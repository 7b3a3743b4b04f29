"""Shared fixtures: a migrated SQLite database and the package's server on a loopback port."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import PostgresServer, ServerProcess, migrate, missing, start_entrypoint


def pytest_report_header(config: pytest.Config) -> str:
    """Say which django_websocket is under test: CI tests the installed wheel."""
    import django_websocket
    from django_websocket.protocol import mask

    return (
        f"django_websocket {django_websocket.__version__} from "
        f"{Path(django_websocket.__file__).parent}; C accelerator: {mask.ACCELERATED}"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "autobahn: runs the Autobahn|Testsuite (needs Python 2.7)")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line(
        "markers", "matrix: view shapes x peer behaviours end to end (tests/test_io_matrix.py)"
    )


@pytest.fixture(scope="session")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("db") / "db.sqlite3")
    migrate(path)
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A migrated PostgreSQL database on a server of its own (Debian's postgresql, psycopg 3)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed: pip install 'psycopg[binary]'")
    bindir = PostgresServer.find()
    if bindir is None:
        missing("PostgreSQL is not installed: apt-get install postgresql")
    assert bindir is not None
    server = PostgresServer(bindir)
    try:
        server.start()
        migrate(":memory:", **server.env())
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(db_path: str) -> Iterator[ServerProcess]:
    proc = start_entrypoint(db_path)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def django_settings() -> None:
    """Configure Django in the test process itself (for the test client and settings tests)."""

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("TEST_DB_PATH", ":memory:")
    import django

    django.setup()

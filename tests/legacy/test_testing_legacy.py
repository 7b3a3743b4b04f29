"""The legacy example's own tests (``legacy_example/chat/tests.py``), run with ``manage.py test``.

They use ``django_websocket.testing.WebSocketLiveServerTestCase``, as a
project's tests would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .conftest import LEGACY_DIR, example_env


def test_manage_py_test_chat(tmp_path: Path) -> None:
    tests = (LEGACY_DIR / "chat" / "tests.py").read_text()
    expected = len(re.findall(r"^    def test_", tests, re.MULTILINE))
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "chat", "-v", "2"],
        cwd=str(LEGACY_DIR),
        env=example_env(str(tmp_path / "db.sqlite3")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert re.search(rf"^Ran {expected} tests in ", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^OK$", result.stdout, re.MULTILINE), result.stdout
    assert result.returncode == 0, result.stdout
    assert not (tmp_path / "db.sqlite3").exists()  # the test database was in memory

"""The protocol core is Sans-I/O and standard-library only.

``django_websocket.protocol`` must import without gevent, Django or any other
third-party package, so that it can be reused (and tested) on its own.  The
check runs in a fresh interpreter, where nothing else has been imported yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
import django_websocket.protocol
import django_websocket.protocol.connection
import django_websocket.protocol.deflate
import django_websocket.protocol.events
import django_websocket.protocol.frames
import django_websocket.protocol.handshake
import django_websocket.protocol.mask
json.dump(
    {
        "all": sorted(sys.modules),
        "new": sorted(set(sys.modules) - before),
        "stdlib": sorted(sys.stdlib_module_names),
        "file": [django_websocket.protocol.__file__],
    },
    sys.stdout,
)
"""


def _probe() -> dict[str, list[str]]:
    """Import the protocol package in a fresh interpreter and report ``sys.modules``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "COVERAGE_"))}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        # -I: isolated mode, no PYTHONPATH, no user site, no current directory.
        [sys.executable, "-I", "-c", PROBE, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    data: dict[str, list[str]] = json.loads(result.stdout)
    return data


def _is_ours(name: str) -> bool:
    return name == "django_websocket" or name.startswith("django_websocket.")


def test_protocol_imports_only_the_standard_library() -> None:
    modules = _probe()
    # The probe imported this checkout's package, and nothing had before.
    assert Path(modules["file"][0]).resolve().is_relative_to(ROOT)
    assert "django_websocket.protocol.connection" in modules["new"]
    stdlib = set(modules["stdlib"])
    foreign = [
        name for name in modules["new"] if not _is_ours(name) and name.split(".")[0] not in stdlib
    ]
    assert foreign == []


def test_no_gevent_or_django_anywhere() -> None:
    loaded = _probe()["all"]
    offenders = [
        name
        for name in loaded
        if name.split(".")[0] in {"gevent", "greenlet", "django", "asgiref"}
        or name.startswith("gevent")
    ]
    assert offenders == []

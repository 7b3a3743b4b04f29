"""Start real servers on loopback ports for the end-to-end tests, and talk raw WebSocket."""

from __future__ import annotations

import atexit
import base64
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent


def missing(what: str) -> None:
    """Skip a test that needs something not installed here; in CI (``CI=true``), fail it."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: this test must run)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout} s")


def project_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["DJANGO_SETTINGS_MODULE"] = "project.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """A server started as its own process, with its output captured to a file."""

    def __init__(
        self,
        command: list[str],
        port: int,
        env: dict[str, str],
        cwd: str | Path = TESTS_DIR,
        ready_timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.command = command
        self._log_text = ""
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="server-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            command,
            cwd=str(cwd),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, self.proc, ready_timeout)
        except Exception:
            log = self.log()
            self.stop()
            raise RuntimeError(f"{command} failed to start:\n{log}") from None

    def url(self, path: str, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def http_get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url(path, "http"), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def log(self) -> str:
        """Everything the server printed so far (kept after :meth:`stop`)."""
        if self._log.closed:
            return self._log_text
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log_text = self.log()
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
        return self.proc.returncode


def migrate(db_path: str, **env: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=str(TESTS_DIR),
        env=project_env(TEST_DB_PATH=db_path, **env),
        check=True,
    )


def start_entrypoint(db_path: str, **env: str) -> ServerProcess:
    port = free_port()
    return ServerProcess(
        [sys.executable, "-m", "django_websocket", f"127.0.0.1:{port}"],
        port,
        project_env(TEST_DB_PATH=db_path, **env),
    )


def _gunicorn_has(setting: str) -> bool:
    import gunicorn.config

    return any(item.name == setting for item in gunicorn.config.KNOWN_SETTINGS)


def gunicorn_command(port: int, worker_class: str, *options: str, workers: int = 1) -> list[str]:
    """gunicorn serving ``project.wsgi`` (one worker by default), access log on stdout."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(TESTS_DIR),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--access-logfile",
        "-",
        *options,
    ]
    if _gunicorn_has("control_socket_disable"):
        # Recent gunicorn listens on a control socket at a fixed path by
        # default; several test servers at once must not share it.
        command.append("--no-control-socket")
    return [*command, "project.wsgi"]


# ----------------------------------------------------------------------
# uWSGI, from the ini files docs/deployment.md shows

#: The ``uwsgi`` program next to this interpreter (pip installs it there), or on PATH.
UWSGI: str | None = next(
    (
        str(path)
        for path in (Path(sys.executable).parent / "uwsgi",)
        if path.exists() and os.access(path, os.X_OK)
    ),
    None,
) or shutil.which("uwsgi")
UWSGI_MISSING = "uWSGI is not installed: pip install uwsgi (or the package's [uwsgi] extra)"


def documented_uwsgi_ini(kind: str) -> str:
    """An ini block of docs/deployment.md's uWSGI section.

    ``gevent`` and ``threads`` are whole files; ``router`` (uWSGI's HTTP
    router) and ``uwsgi_pass`` (nginx speaking the uwsgi protocol) are the
    lines that replace the ``http-socket`` line.
    """
    text = (REPO_DIR / "docs" / "deployment.md").read_text()
    section = text.split("\n## uWSGI\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"<!-- ([^\n]*?) -->\n```ini\n(.*?)```", section, re.S)
    by_kind = {}
    for note, block in blocks:
        if "router" in note:
            by_kind["router"] = block
        elif "uwsgi_pass" in note:
            by_kind["uwsgi_pass"] = block
        elif "gevent" in block:
            by_kind["gevent"] = block
        else:
            by_kind["threads"] = block
    assert set(by_kind) == {"gevent", "threads", "router", "uwsgi_pass"}, (
        "docs/deployment.md lost a tested uWSGI block"
    )
    return by_kind[kind]


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the documented ini"
    return text.replace(old, new)


def uwsgi_ini(
    port: int, loop: str, front: str = "http-socket", drop: tuple[str, ...] = (), **options: str
) -> str:
    """The documented ini for ``loop`` (``gevent`` or ``threads``) on ``port``, one worker.

    ``front``: ``http-socket`` (the file as shown), ``router`` (uWSGI's HTTP
    router in front) or ``uwsgi_pass`` (the uwsgi protocol, for nginx), each
    the documented replacement of the ``http-socket`` line.  ``drop`` names
    documented lines to leave out; ``options`` are appended (``_`` for ``-``).
    """
    ini = documented_uwsgi_ini(loop)
    for line in drop:
        ini = _replace_once(ini, line + "\n", "")
    ini = _replace_once(ini, "myproject.wsgi:application", "project.wsgi:application")
    ini = _replace_once(ini, "processes = 4", "processes = 1")
    socket_line = "http-socket = 127.0.0.1:8000"
    if front != "http-socket":
        block = documented_uwsgi_ini(front).strip()
        ini = _replace_once(ini, socket_line, block)
        socket_line = next(line for line in block.splitlines() if "127.0.0.1:" in line)
    address = socket_line.rsplit("127.0.0.1:", 1)[1]
    ini = _replace_once(ini, socket_line, socket_line.replace(address, str(port)))
    if loop == "gevent":
        ini = _replace_once(ini, "gevent = 1000", "gevent = 100")
    else:
        ini = _replace_once(ini, "threads = 50", "threads = 4")
    for name, value in options.items():
        ini += f"{name.replace('_', '-')} = {value}\n"
    return ini


def uwsgi_command(
    port: int, loop: str, front: str = "http-socket", drop: tuple[str, ...] = (), **options: str
) -> list[str]:
    """uWSGI started from the documented ini (written to a temporary file), in the tests dir."""
    assert UWSGI is not None, UWSGI_MISSING
    ini = uwsgi_ini(port, loop, front, drop, chdir=str(TESTS_DIR), **options)
    handle, path = tempfile.mkstemp(prefix="uwsgi-", suffix=".ini")
    with os.fdopen(handle, "w") as file:
        file.write(ini)
    # Kept while the tests run: a reloading uWSGI reads its ini file again.
    atexit.register(Path(path).unlink, missing_ok=True)
    return [UWSGI, "--ini", path]


# ----------------------------------------------------------------------
# A raw client, for what third-party clients hide: the exact bytes.

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """Make a self-signed certificate for 127.0.0.1 and its key in ``directory`` (paths).

    Needs the ``openssl`` command (callers skip without it).
    """
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def raw_connect(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[socket.socket, bytes, bytes]:
    """Send a handshake; return the socket, the response head and any bytes after it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
    ]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head, rest = read_response_head(sock)
    return sock, head, rest


def read_response_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read an HTTP response head; return it and any bytes that came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def open_ws(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[socket.socket, FrameReader]:
    """Hand-shake on a raw socket, assert the 101, and return the socket and a frame reader."""
    sock, head, rest = raw_connect(port, path, headers)
    if not head.startswith(b"HTTP/1.1 101 "):
        sock.close()
        raise AssertionError(f"expected a 101 response, got {head!r}")
    return sock, FrameReader(sock, rest)


def client_frame(
    opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x11\x22\x33\x44"
) -> bytes:
    first = opcode | (0x80 if fin else 0)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class FrameReader:
    """Reads server frames from a socket, keeping every byte it received."""

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self.sock = sock
        self.buffer = initial

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection ended with {len(self.buffer)} of {n} bytes")
            self.buffer += chunk

    def frame(self) -> tuple[int, bool, bytes]:
        self._fill(2)
        b0, b1 = self.buffer[0], self.buffer[1]
        assert not b1 & 0x80, "server frames must not be masked"
        length = b1 & 0x7F
        offset = 2
        if length == 126:
            self._fill(4)
            length = struct.unpack("!H", self.buffer[2:4])[0]
            offset = 4
        elif length == 127:
            self._fill(10)
            length = struct.unpack("!Q", self.buffer[2:10])[0]
            offset = 10
        self._fill(offset + length)
        payload = self.buffer[offset : offset + length]
        self.buffer = self.buffer[offset + length :]
        return b0 & 0x0F, bool(b0 & 0x80), payload

    def rest_until_eof(self, timeout: float = 5.0) -> bytes:
        """Everything the server sends until it ends the connection."""
        self.sock.settimeout(timeout)
        data = self.buffer
        self.buffer = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ----------------------------------------------------------------------
# A throwaway PostgreSQL server (Debian's postgresql package), for the tests
# that need a database server of their own rather than a SQLite file.


class PostgresServer:
    """``postgres`` on a loopback port, with its data in a temporary directory.

    ``initdb`` refuses to run as root, so as root it and the server run as
    the ``postgres`` user the Debian package creates.
    """

    NAME = "dwtest"
    USER = "postgres"

    def __init__(self, bindir: Path, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = settings or {}  # more ``-c name=value`` server settings
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dwtest-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, object] = {}
        if os.geteuid() == 0:
            import pwd

            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    @staticmethod
    def find() -> Path | None:
        """The newest installed PostgreSQL's ``bin`` directory, if any."""
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda path: (
                int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0
            ),
        )
        return found[-1].parent if found else None

    def start(self) -> None:
        data = str(self.dir / "data")
        initdb = [str(self.bindir / "initdb"), "-D", data, "-A", "trust", "-U", self.USER]
        subprocess.run(
            [*initdb, "--no-sync", "-E", "UTF8"],
            check=True,
            cwd=self.dir,
            **self._as,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        options = ["-p", str(self.port), "-k", str(self.dir), "-c", "fsync=off"]
        options += ["-c", "listen_addresses=127.0.0.1"]
        for name, value in self.settings.items():
            options += ["-c", f"{name}={value}"]
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", data, *options],
            cwd=self.dir,
            **self._as,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.execute(f"CREATE DATABASE {self.NAME}", database="postgres")
                return
            except Exception:  # still starting up
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def execute(self, sql: str, database: str = NAME) -> list[tuple[object, ...]]:
        """Run one statement in autocommit mode; return its rows (if any)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.USER, dbname=database, autocommit=True
        ) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def env(self) -> dict[str, str]:
        """What the test project's settings read to use this server."""
        return {"TEST_POSTGRES_PORT": str(self.port), "TEST_POSTGRES_NAME": self.NAME}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

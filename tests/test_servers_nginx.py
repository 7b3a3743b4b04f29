"""nginx in front of the package's server, with the configuration docs/deployment.md shows.

The nginx block is read from docs/deployment.md itself, so the documented
configuration is the one tested; only its ports and certificate paths are
replaced.  nginx runs as a test process (no daemon, no master process) on a
loopback port, terminating TLS with a self-signed certificate.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import (
    KEY,
    REPO_DIR,
    UWSGI,
    UWSGI_MISSING,
    FrameReader,
    ServerProcess,
    client_frame,
    free_port,
    missing,
    open_ws,
    project_env,
    raw_connect,
    read_response_head,
    self_signed_certificate,
    uwsgi_command,
    wait_for_port,
)
from test_servers import error_lines, stop_all
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)
OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.skipif(
    NGINX is None or OPENSSL is None,
    reason="nginx (and openssl) not installed: apt-get install nginx-light openssl",
)

TEXT, CLOSE = 0x1, 0x8
DOCS = REPO_DIR / "docs" / "deployment.md"


def documented_nginx_config() -> str:
    """The nginx block of docs/deployment.md (the one announced as tested)."""
    text = DOCS.read_text()
    match = re.search(r"runs the block below[^\n]*-->\n```nginx\n(.*?)```", text, re.S)
    assert match, "docs/deployment.md lost its tested nginx block"
    return match.group(1)


def substitute(config: str, replacements: dict[str, str]) -> str:
    """Replace each documented value, which must appear exactly once."""
    for old, new in replacements.items():
        assert config.count(old) == 1, f"expected {old!r} once in the documented config"
        config = config.replace(old, new)
    return config


class Nginx:
    """nginx in the foreground with a configuration of its own in a temporary directory."""

    def __init__(self, directory: Path, site: str) -> None:
        self.directory = directory
        directory.mkdir()
        self.port = free_port()
        self.error_log = directory / "error.log"
        conf = directory / "nginx.conf"
        conf.write_text(
            textwrap.dedent(
                f"""\
                daemon off;
                master_process off;
                worker_processes 1;
                pid {directory}/nginx.pid;
                error_log {self.error_log} info;
                events {{ worker_connections 128; }}
                http {{
                    access_log {directory}/access.log;
                    client_body_temp_path {directory}/client_body;
                    proxy_temp_path {directory}/proxy;
                    fastcgi_temp_path {directory}/fastcgi;
                    uwsgi_temp_path {directory}/uwsgi;
                    scgi_temp_path {directory}/scgi;
                """
            )
            + site.replace("__PORT__", str(self.port))
            + "}\n"
        )
        check = subprocess.run(
            [str(NGINX), "-t", "-p", str(directory), "-c", str(conf)],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [str(NGINX), "-p", str(directory), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        """Stop nginx (it exits on SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def errors(self) -> list[str]:
        """The error-level lines of nginx's error log."""
        return [
            line
            for line in self.error_log.read_text().splitlines()
            if re.search(r"\[(error|crit|alert|emerg)\]", line)
        ]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (paths)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def backends(
    db_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    """The package's server twice: with the documented proxy settings, and without them."""
    directory = tmp_path_factory.mktemp("proxy_settings")
    (directory / "proxy_settings.py").write_text(
        "from project.settings import *  # noqa: F403\n\n"
        'SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")\n'
    )

    def start(settings: str) -> ServerProcess:
        port = free_port()
        env = project_env(TEST_DB_PATH=db_path, DJANGO_SETTINGS_MODULE=settings)
        env["PYTHONPATH"] = f"{directory}{os.pathsep}{env['PYTHONPATH']}"
        return ServerProcess(
            [sys.executable, "-m", "django_websocket", f"127.0.0.1:{port}"], port, env
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            "proxy": pool.submit(start, "proxy_settings"),
            "plain": pool.submit(start, "project.settings"),
        }
    started = {name: future.result() for name, future in futures.items()}
    yield started
    stop_all(list(started.values()))


def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    certificate: tuple[str, str],
    backend: ServerProcess,
    **changes: str,
) -> Nginx:
    """nginx running the documented configuration in front of ``backend``, with ``changes``."""
    cert, key = certificate
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{backend.port};",
        "listen 443 ssl;": "listen 127.0.0.1:__PORT__ ssl;",
        "/etc/ssl/certs/example.com.pem": cert,
        "/etc/ssl/private/example.com.key": key,
        **changes,
    }
    site = substitute(documented_nginx_config(), replacements)
    return Nginx(tmp_path_factory.mktemp("nginx") / "run", site)


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory,
    certificate: tuple[str, str],
    backends: dict[str, ServerProcess],
) -> Iterator[Nginx]:
    """nginx with the documented configuration, in front of the settings it documents."""
    server = proxy(tmp_path_factory, certificate, backends["proxy"])
    yield server
    server.stop()


def tls_context() -> ssl.SSLContext:
    """A client TLS context that trusts the test's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
    return context


def tls_handshake(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[ssl.SSLSocket, bytes, FrameReader]:
    """A raw WebSocket handshake over TLS; returns the socket, the response head, a reader."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = tls_context().wrap_socket(raw, server_hostname="127.0.0.1")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head, rest = read_response_head(sock)
    return sock, head, FrameReader(sock, rest)


def https_get(port: int, path: str) -> tuple[int, bytes]:
    """A plain HTTPS GET through the proxy: status and body."""
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls_context())
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame."""
    return code.to_bytes(2, "big") + reason.encode()


# ----------------------------------------------------------------------


def test_browser_websocket_through_nginx_nothing_after_close(nginx: Nginx) -> None:
    """A same-origin browser handshake over wss://; echo; only EOF after the close frame."""
    origin = f"https://127.0.0.1:{nginx.port}"  # the page's own origin, as a browser sends it
    sock, head, reader = tls_handshake(nginx.port, "/echo/", {"Origin": origin})
    with sock:
        assert head.startswith(b"HTTP/1.1 101 "), head
        sock.sendall(client_frame(TEXT, b"through nginx"))
        assert reader.frame() == (TEXT, True, b"through nginx")
        sock.sendall(client_frame(CLOSE, close_payload(1000)))
        assert reader.frame() == (CLOSE, True, close_payload(1000))
        assert reader.rest_until_eof() == b""
    assert https_get(nginx.port, "/plain/") == (200, b"plain ok")


def test_server_close_and_view_error_through_nginx(nginx: Nginx) -> None:
    """Server-initiated close and a raising view, through nginx: only EOF after the close."""
    sock, head, reader = tls_handshake(nginx.port, "/server-close/")
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        assert reader.frame() == (TEXT, True, b"bye")
        assert reader.frame() == (CLOSE, True, close_payload(4001, "done here"))
        sock.sendall(client_frame(CLOSE, close_payload(4001)))
        assert reader.rest_until_eof() == b""
    sock, head, reader = tls_handshake(nginx.port, "/boom/")
    with sock:
        assert reader.frame() == (TEXT, True, b"about to fail")
        assert reader.frame()[:2] == (CLOSE, True)
        sock.sendall(client_frame(CLOSE, close_payload(1011)))
        assert reader.rest_until_eof() == b""
    time.sleep(0.1)
    assert nginx.errors() == []


def test_websockets_client_library_through_nginx(nginx: Nginx) -> None:
    """An ordinary client library connects through nginx over TLS."""
    url = f"wss://127.0.0.1:{nginx.port}/echo/"
    with connect(url, ssl=tls_context(), origin=f"https://127.0.0.1:{nginx.port}") as ws:
        ws.send("wss")
        assert ws.recv() == "wss"


def test_same_origin_refused_without_secure_proxy_ssl_header(
    tmp_path_factory: pytest.TempPathFactory,
    certificate: tuple[str, str],
    backends: dict[str, ServerProcess],
) -> None:
    """Without SECURE_PROXY_SSL_HEADER, the https page's own wss:// handshake gets 403."""
    server = proxy(tmp_path_factory, certificate, backends["plain"])
    try:
        origin = f"https://127.0.0.1:{server.port}"
        sock, head, _ = tls_handshake(server.port, "/echo/", {"Origin": origin})
        sock.close()
        # Django believes the request came over http: the https page's origin differs.
        assert head.startswith(b"HTTP/1.1 403 "), head
    finally:
        server.stop()
    log = backends["plain"].log()
    assert "refused with 403" in log


def test_host_without_port_fails_the_same_origin_check_on_other_ports(
    tmp_path_factory: pytest.TempPathFactory,
    certificate: tuple[str, str],
    backends: dict[str, ServerProcess],
) -> None:
    """``Host $host`` (no port) breaks the same-origin check on a non-default port: 403."""
    server = proxy(
        tmp_path_factory,
        certificate,
        backends["proxy"],
        **{"proxy_set_header Host $http_host;": "proxy_set_header Host $host;"},
    )
    try:
        origin = f"https://127.0.0.1:{server.port}"
        sock, head, _ = tls_handshake(server.port, "/echo/", {"Origin": origin})
        sock.close()
        assert head.startswith(b"HTTP/1.1 403 "), head
    finally:
        server.stop()


def test_proxy_read_timeout_needs_pings(
    tmp_path_factory: pytest.TempPathFactory,
    certificate: tuple[str, str],
    backends: dict[str, ServerProcess],
) -> None:
    """nginx drops a WebSocket silent for proxy_read_timeout; the server's pings prevent it."""
    server = proxy(
        tmp_path_factory,
        certificate,
        backends["proxy"],
        **{"proxy_read_timeout 60s;": "proxy_read_timeout 1s;"},
    )
    try:
        url = f"wss://127.0.0.1:{server.port}"
        # /echo/ pings every 20 s (the test settings); /keepalive/ every 0.3 s.
        with (
            connect(f"{url}/echo/", ssl=tls_context()) as silent,
            connect(f"{url}/keepalive/", ssl=tls_context()) as pinged,
        ):
            time.sleep(2.0)  # twice proxy_read_timeout; the clients answer pings
            pinged.send("still")
            assert pinged.recv() == "still:None"
            with pytest.raises(ConnectionClosedError) as info:
                silent.send("anyone?")
                silent.recv(timeout=5)
            assert info.value.rcvd is None  # dropped by nginx: no close frame
        log = server.error_log.read_text()
        assert "upstream timed out" in log and "proxying upgraded connection" in log, log
    finally:
        server.stop()


def test_backend_logs_clean(backends: dict[str, ServerProcess], nginx: Nginx) -> None:
    """No error line in the backend (but the raising view's own) nor in nginx's log."""
    time.sleep(0.1)
    log = backends["proxy"].log()
    log = re.sub(
        r"Internal Server Error in WebSocket view: /boom/\nTraceback \(most recent call last\):"
        r"\n(?:[ \t].*\n)*RuntimeError: view failure after the upgrade\n",
        "",
        log,
    )
    assert error_lines(log) == [], log
    assert nginx.errors() == []


# ----------------------------------------------------------------------
# nginx speaking the uwsgi protocol to uWSGI (uwsgi_pass), as docs/deployment.md shows

UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")


def documented_uwsgi_pass_config() -> str:
    """The uwsgi_pass block of docs/deployment.md's uWSGI section."""
    text = DOCS.read_text()
    match = re.search(r"runs the uwsgi_pass block below[^\n]*-->\n```nginx\n(.*?)```", text, re.S)
    assert match, "docs/deployment.md lost its tested uwsgi_pass block"
    return match.group(1)


def test_websockets_through_nginx_uwsgi_pass(db_path: str, tmp_path: Path) -> None:
    """nginx's uwsgi_pass carries the upgrade to uWSGI's gevent loop: echo, both closes, Origin.

    Zero bytes after the close frame, plain HTTP served, and clean logs in
    nginx and uWSGI.
    """
    if UWSGI is None:
        missing(UWSGI_MISSING)
    if not UWSGI_PARAMS.exists():
        missing(f"{UWSGI_PARAMS} is missing (Debian's nginx-common installs it)")
    port = free_port()
    backend = ServerProcess(
        uwsgi_command(port, "gevent", "uwsgi_pass"), port, project_env(TEST_DB_PATH=db_path)
    )
    front: Nginx | None = None
    try:
        site = substitute(
            documented_uwsgi_pass_config(),
            {
                "server 127.0.0.1:8001;": f"server 127.0.0.1:{port};",
                "listen 80;": "listen 127.0.0.1:__PORT__;",
                "include uwsgi_params;": f"include {UWSGI_PARAMS};",
            },
        )
        front = Nginx(tmp_path / "nginx", site)
        # Debian's uwsgi_params passes HTTP_HOST as $host, without the port:
        # the origin Django sees is the one a browser sends on port 80.
        sock, reader = open_ws(front.port, "/echo/", {"Origin": "http://127.0.0.1"})
        with sock:
            sock.sendall(client_frame(TEXT, b"through uwsgi_pass"))
            assert reader.frame() == (TEXT, True, b"through uwsgi_pass")
            sock.sendall(client_frame(CLOSE, close_payload(1000)))
            assert reader.frame() == (CLOSE, True, close_payload(1000))
            assert reader.rest_until_eof() == b""
        sock, reader = open_ws(front.port, "/server-close/")
        with sock:
            assert reader.frame() == (TEXT, True, b"bye")
            assert reader.frame() == (CLOSE, True, close_payload(4001, "done here"))
            sock.sendall(client_frame(CLOSE, close_payload(4001)))
            assert reader.rest_until_eof() == b""
        with connect(f"ws://127.0.0.1:{front.port}/subprotocol/", subprotocols=["chat.v1"]) as ws:
            assert ws.recv(timeout=5) == "chat.v1"
        sock, head, _ = raw_connect(front.port, "/echo/", {"Origin": "http://evil.example"})
        sock.close()
        assert head.startswith(b"HTTP/1.1 403 "), head
        with urllib.request.urlopen(
            f"http://127.0.0.1:{front.port}/plain/", timeout=10
        ) as response:
            assert response.read() == b"plain ok"
        time.sleep(0.2)
        assert front.errors() == []
    finally:
        if front is not None:
            front.stop()
        stop_all([backend])
    assert error_lines(backend.log()) == [], backend.log()

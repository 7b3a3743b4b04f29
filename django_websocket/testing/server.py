"""The project served by the package's gevent server in a thread of the test process.

The server runs in a thread of its own with its own gevent hub, so the test
(which blocks in ordinary sockets) and the server never wait for each other.
Being in the same process, it sees what the test sees: settings changed with
``override_settings``, mocks, and in-memory SQLite test databases, whose
connections are shared with the server as Django's ``LiveServerTestCase``
shares them.  Other databases are reached through connections of the
server's own; each request (greenlet) gets its own, as in production under
gevent's monkey-patching.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from django.db import connections

from ..server.concurrency import process_is_green
from ..server.transport import ENVIRON_KEY, Transport
from .client import DEFAULT_TIMEOUT, Cookies, Headers, WebSocketClient

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["LiveWebSocketServer", "in_memory_connections", "session_cookies"]

logger = logging.getLogger("django_websocket.testing")

WSGIApplication = Callable[..., Any]


def in_memory_connections() -> dict[str, BaseDatabaseWrapper]:
    """This thread's connections to in-memory SQLite databases, by alias.

    A live server must use these very connections: each new connection to
    an in-memory database would see a database of its own (Django's
    ``LiveServerTestCase`` shares them the same way).
    """
    return {
        conn.alias: conn
        for conn in connections.all()
        if conn.vendor == "sqlite" and getattr(conn, "is_in_memory_db", lambda: False)()
    }


def session_cookies(user: Any, backend: str | None = None) -> Cookies:
    """Cookies of a new session logged in as ``user`` (through ``Client.force_login``)."""
    from django.test import Client

    client = Client()
    client.force_login(user, backend=backend)
    return client.cookies


class _GreenletConnections:
    """Give each greenlet of the server thread its own Django database connections.

    Without monkey-patching, Django's connections are per *thread*, so every
    request greenlet of the server thread would share one connection per
    database, and one request's end (``close_old_connections``) would close
    it under another's open transaction.  This greenlet trace function (it
    is per thread, so it costs nothing elsewhere) puts each greenlet's
    connections aside when it switches out and back when it switches in.
    Shared connections (in-memory SQLite) are left in place for all.
    """

    def __init__(self, shared: Iterable[str]) -> None:
        self._shared = frozenset(shared)
        self._saved: weakref.WeakKeyDictionary[Any, dict[str, BaseDatabaseWrapper]] = (
            weakref.WeakKeyDictionary()
        )
        self._previous: Any = None

    def install(self) -> None:
        import greenlet

        self._previous = greenlet.settrace(self)

    def uninstall(self) -> None:
        import greenlet

        greenlet.settrace(self._previous)
        self._previous = None
        saved = list(self._saved.values())
        self._saved.clear()
        for own in saved:
            for conn in own.values():
                _close_quietly(conn)

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            try:
                self._switch(*args)
            except Exception:  # a trace function must not raise into the switch
                logger.exception("Swapping database connections between greenlets failed")
        if self._previous is not None:
            self._previous(event, args)

    def _switch(self, origin: Any, target: Any) -> None:
        own = {
            conn.alias: conn
            for conn in connections.all(initialized_only=True)
            if conn.alias not in self._shared
        }
        for alias in own:
            del connections[alias]
        if own:
            if getattr(origin, "dead", False):
                for conn in own.values():
                    _close_quietly(conn)
            else:
                self._saved[origin] = own
        for alias, conn in self._saved.pop(target, {}).items():
            connections[alias] = conn


def _close_quietly(conn: BaseDatabaseWrapper) -> None:
    try:
        conn.close()
    except Exception:
        logger.debug("Closing a live server database connection failed", exc_info=True)


class _UnpatchedWarningFilter(logging.Filter):
    """Drop the package's "not monkey-patched" warning when it comes from the server thread.

    The live server runs without monkey-patching on purpose (the test
    process is not patched); the warning would only confuse test output.
    """

    def __init__(self, thread_ident: int | None) -> None:
        super().__init__()
        self.thread_ident = thread_ident

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread == self.thread_ident and record.name == "django_websocket.gevent")


class _Tracked:
    """Wrap a WSGI result so that closing it marks the request as finished."""

    def __init__(self, result: Iterable[bytes], done: Callable[[], None]) -> None:
        self._result = result
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


class LiveWebSocketServer:
    """The Django project served over HTTP and WebSocket in a thread of this process.

    ``application`` is the WSGI application (default: Django's
    ``WSGIHandler``); ``connections_override`` maps database aliases to
    connections the server must share with the test (default:
    :func:`in_memory_connections`).  ``port=0`` picks a free port.
    ``shutdown_timeout`` is how long :meth:`stop` lets WebSocket views run
    before they are stopped; ``timeout`` is the default of clients made by
    :meth:`connect`.

    ::

        server = LiveWebSocketServer()
        server.start()
        with server.connect("/echo/") as ws:
            ws.send("hi")
            assert ws.receive() == "hi"
        server.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        application: WSGIApplication | None = None,
        connections_override: Mapping[str, BaseDatabaseWrapper] | None = None,
        shutdown_timeout: float = 5.0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.host = host
        """The address the server listens on."""
        self.port = port
        """The port the server listens on (the actual one once started)."""
        self.shutdown_timeout = shutdown_timeout
        """Seconds :meth:`stop` gives running WebSocket views before stopping them."""
        self.timeout = timeout
        """Default timeout, in seconds, of the clients :meth:`connect` makes."""
        self._application = application
        self._override: dict[str, BaseDatabaseWrapper] = (
            in_memory_connections() if connections_override is None else dict(connections_override)
        )
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._request_stop: Callable[[], None] | None = None
        self._views = threading.Condition()
        self._running: dict[int, tuple[str, Transport]] = {}
        self._clients: list[WebSocketClient] = []
        self._sharing: list[BaseDatabaseWrapper] = []

    def __repr__(self) -> str:
        return f"<LiveWebSocketServer {self.url}>"

    @property
    def url(self) -> str:
        """``http://host:port``, the server's HTTP address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port``, the base of WebSocket URLs."""
        return "ws" + self.url[4:]

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    # ------------------------------------------------------------------
    # Starting and stopping

    def start(self, timeout: float = 30.0) -> None:
        """Start serving; return once the server listens (raise its error if it could not)."""
        if self._thread is not None:
            raise RuntimeError("the live server has already been started")
        if self._application is None:
            from django.core.handlers.wsgi import WSGIHandler

            self._application = WSGIHandler()
        for conn in self._override.values():
            conn.inc_thread_sharing()
            self._sharing.append(conn)
        self._thread = threading.Thread(
            target=self._run, name=f"django-websocket-live-server-{id(self):x}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the live server did not start within {timeout} s")
        if self._error is not None:
            # The thread sets _ready before its cleanup; wait for the cleanup so
            # that `running` is false and start() can be called again.
            error, self._error = self._error, None
            self._thread.join(self.shutdown_timeout + 10.0)
            self._thread = None
            self._ready.clear()
            self._release_connections()
            raise error

    def stop(self) -> None:
        """Close the clients :meth:`connect` made, stop the server and wait for its thread.

        WebSocket views still running after ``shutdown_timeout`` seconds are
        stopped (their clients get 1001).
        """
        thread = self._thread
        if thread is None:
            return
        try:
            self.close_clients()
        finally:
            request_stop = self._request_stop
            if request_stop is not None and thread.is_alive():
                request_stop()
            thread.join(self.shutdown_timeout + 10.0)
            if thread.is_alive():  # pragma: no cover - a view that blocks the whole thread
                logger.warning("The live server thread is still running after stop()")
            self._thread = None
            self._release_connections()

    def _release_connections(self) -> None:
        sharing, self._sharing = self._sharing, []
        for conn in sharing:
            conn.dec_thread_sharing()

    def __enter__(self) -> LiveWebSocketServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        import gevent
        import gevent.event

        from ..server.serve import make_server

        green = process_is_green()  # "threads" are greenlets in the same hub
        hub = gevent.get_hub()
        tracer: _GreenletConnections | None = None
        root = logging.getLogger("django_websocket.gevent")
        log_filter = _UnpatchedWarningFilter(threading.get_ident())
        root.addFilter(log_filter)
        try:
            for alias, conn in self._override.items():
                connections[alias] = conn
            if not green:
                tracer = _GreenletConnections(self._override)
                tracer.install()
            # log=None: no access lines, as Django's live server is quiet.
            server = make_server(self._wsgi, self.host, self.port, log=None)
            server.start()
            self.port = server.server_port
            stopping = gevent.event.Event()

            def request_stop() -> None:
                hub.loop.run_callback_threadsafe(stopping.set)

            self._request_stop = request_stop
            self._ready.set()
            stopping.wait()
            self._shut_down(server)
        except BaseException as exc:
            self._error = exc
        finally:
            self._request_stop = None
            self._ready.set()
            if tracer is not None:
                tracer.uninstall()
            for conn in connections.all(initialized_only=True):
                if conn.alias not in self._override:
                    _close_quietly(conn)
            root.removeFilter(log_filter)
            if not green:
                hub.destroy(destroy_loop=True)

    def _shut_down(self, server: Any) -> None:
        """Stop accepting; give the views ``shutdown_timeout`` seconds, then stop them.

        A stopped view closes its WebSocket with 1001; a client that does not
        answer that close frame within a second has its connection ended.
        """
        server.close()
        server.drain()
        pool = server.pool
        pool.join(timeout=self.shutdown_timeout)
        if len(pool):
            pool.kill(block=True, timeout=1.0)
        with self._views:
            transports = [transport for _, transport in self._running.values()]
        for transport in transports:
            with contextlib.suppress(OSError):
                transport.sock.shutdown(socket.SHUT_RDWR)
        pool.join(timeout=1.0)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The application, with shared connections in place and WebSocket views counted."""
        for alias, conn in self._override.items():
            connections[alias] = conn  # per request: with green threads, locals are per greenlet
        assert self._application is not None
        if environ.get(ENVIRON_KEY) is None:
            return self._application(environ, start_response)
        token = id(environ)
        with self._views:
            self._running[token] = (environ.get("PATH_INFO", "/"), environ[ENVIRON_KEY])

        def done() -> None:
            with self._views:
                self._running.pop(token, None)
                self._views.notify_all()

        try:
            result = self._application(environ, start_response)
        except BaseException:
            done()
            raise
        return _Tracked(result, done)

    # ------------------------------------------------------------------
    # Clients

    def connect(
        self,
        path: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: Headers | None = None,
        origin: str | None = None,
        cookies: Cookies | None = None,
        user: Any = None,
        timeout: float | None = None,
    ) -> WebSocketClient:
        """Open a WebSocket to ``path`` on this server and return the connected client.

        ``user`` logs a user in for this connection only (a session made
        with ``Client.force_login``); ``cookies`` sends other cookies (for
        example ``self.client.cookies``); they cannot be combined.  See
        :class:`~django_websocket.testing.WebSocketClient` for the rest.
        The client is closed by :meth:`close_clients` if still open.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        if user is not None:
            if cookies is not None:
                raise TypeError("pass either user= or cookies=, not both")
            cookies = session_cookies(user)
        client = WebSocketClient(
            self.ws_url + path,
            subprotocols=subprotocols,
            headers=headers,
            origin=origin,
            cookies=cookies,
            timeout=self.timeout if timeout is None else timeout,
        )
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        """Close (with 1000) every client :meth:`connect` made that is still open."""
        clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:
                logger.debug("Closing %r failed", client, exc_info=True)

    @property
    def running_views(self) -> list[str]:
        """Paths of the WebSocket requests this server is handling now."""
        with self._views:
            return [path for path, _ in self._running.values()]

    def wait_for_views(self, timeout: float | None = None) -> list[str]:
        """Wait until no WebSocket view runs; return the paths of those still running.

        Waits up to ``timeout`` seconds (default: the client timeout).
        """
        timeout = self.timeout if timeout is None else timeout
        with self._views:
            self._views.wait_for(lambda: not self._running, timeout)
            return [path for path, _ in self._running.values()]

    def finish_test(self, timeout: float | None = None) -> list[str]:
        """Close the clients, then wait for their views; return the paths still running.

        Run this at the end of each test, before the database is flushed.
        """
        self.close_clients()
        return self.wait_for_views(timeout)

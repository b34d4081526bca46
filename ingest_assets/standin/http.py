"""HTTP scaffolding the API stand-ins share, so each stand-in module holds only its API.

Here: serving on a local port from a daemon thread (start/stop, a with-block, the bound
address), a server that drops its kept-alive connections when stopped, a handler base that
tracks its connection and sends headers and body without Nagle delays, and a thread-safe queue
of injected faults with the fault names every stand-in accepts. What a request is answered with
(routes, bodies, what each fault looks like, statistics) stays in the stand-in's own module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

COMMON_FAULTS = (
    "429",
    "429-retry-after-0",
    "429-retry-after-2",
    "500",
    "502",
    "503",
    "reset",
    "truncate",
    "html200",
)
"""Fault names both stand-ins accept (each decides how it looks); some add parametrised ones."""


class StandInServer(ThreadingHTTPServer):
    """Tracks its open connections so that stopping also drops idle keep-alive ones; handlers
    reach their stand-in as `self.server.standin`."""

    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[TrackedHandler], standin: Any
    ) -> None:
        super().__init__(address, handler)
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def server_close(self) -> None:
        super().server_close()
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class TrackedHandler(BaseHTTPRequestHandler):
    """A connection its StandInServer knows about while it is open."""

    server: StandInServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()


class ServedStandIn:
    """A stand-in served by a StandInServer from a daemon thread: `start()`/`stop()` or a
    with-block. `handler` answers its requests; `thread_name` names the serving thread."""

    def __init__(
        self, host: str, port: int, handler: type[TrackedHandler], thread_name: str
    ) -> None:
        self._address = (host, port)
        self._handler = handler
        self._thread_name = thread_name
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port the server is bound to."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; start() it first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> Self:
        if self._server is None:
            self._server = StandInServer(self._address, self._handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=self._thread_name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclasses.dataclass
class _Fault:
    name: str
    remaining: int
    endpoint: str | None


class FaultQueue:
    """Injected faults waiting for requests, served in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, fault: str, times: int, endpoint: str | None) -> None:
        """Queue `fault` for the next `times` requests to `endpoint` (None: any endpoint)."""
        with self._lock:
            self._faults.append(_Fault(fault, times, endpoint))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, endpoint: str, applies: Callable[[str], bool]) -> str | None:
        """Pop one serving of the first queued fault for `endpoint` that `applies` accepts."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (None, endpoint) and applies(fault.name):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.name
        return None

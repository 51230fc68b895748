"""systemd's ``sd_notify`` protocol, with the standard library only.

Under a unit with ``Type=notify`` systemd sets ``$NOTIFY_SOCKET`` (a path, or
``@name`` for an abstract socket) and waits for ``READY=1``; with
``WatchdogSec=`` it also sets ``$WATCHDOG_USEC`` and restarts the service when
no ``WATCHDOG=1`` comes for that long. Each message is one datagram of
``KEY=VALUE`` lines. Without ``$NOTIFY_SOCKET`` every call does nothing, and a
socket that went away never fails the caller: notifying is best effort.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier"]


class Notifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET``.

    Args:
        environ: the environment to read (default ``os.environ``).

    Attributes:
        watchdog: seconds between two ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``),
            or None when systemd does not watch this process.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or ""
        self.address: str | None = ("\0" + address[1:] if address.startswith("@") else address) or None
        self.watchdog: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if self.address and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = int(usec) / 2e6
        self._sock: socket.socket | None = None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one datagram; False if it could not be sent."""
        if self.address is None or not fields:
            return False
        message = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8", "backslashreplace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: the service is up (and its status line)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """``STATUS=...``: the one line ``systemctl status`` shows."""
        return self.notify(f"STATUS={text}")

    def reloading(self) -> bool:
        """``RELOADING=1`` (with ``MONOTONIC_USEC``, as ``Type=notify-reload`` wants); send :meth:`ready` after."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: the service is shutting down."""
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def ping(self, *, force: bool = False) -> bool:
        """``WATCHDOG=1``, at most once per :attr:`watchdog` seconds unless ``force``; False when not watched."""
        if self.watchdog is None:
            return False
        now = time.monotonic()
        if not force and now - self._last_ping < self.watchdog:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

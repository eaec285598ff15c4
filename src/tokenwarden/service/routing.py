"""Every notification leaves with the channel of the team it is about (domain/routing.py).

The functions route with the registry shipped with them. A registry that cannot be read does not
stop a message: it then leaves without a channel, so the platform channel (unfiltered) still gets
it, and the log says why once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tokenwarden.domain.notifications import Notification
from tokenwarden.domain.registry import RegistryError, load_registry
from tokenwarden.domain.routing import Routes, routed, routes_of
from tokenwarden.observability import logger
from tokenwarden.ports import Notifier


class RoutedNotifier:
    """A Notifier that sets each notification's channel before handing it on."""

    def __init__(self, inner: Notifier, routes: Callable[[], Routes]) -> None:
        self.inner = inner
        self._routes = routes

    def publish(self, notification: Notification) -> None:
        self.inner.publish(routed(notification, self._routes()))


class RegistryRoutes:
    """The routes of the registry file at `path`: read at the first message, and again only when
    the file changes (a Lambda container outlives no deploy, a development stack may swap it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._routes = Routes()
        self._warned = False

    def __call__(self) -> Routes:
        try:
            stat = self.path.stat()
        except OSError as exc:
            return self._unrouted(f"cannot read the registry {self.path} ({exc.strerror or exc})")
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                self._routes = routes_of(load_registry(self.path))
            except RegistryError as exc:
                return self._unrouted(str(exc).splitlines()[0])
            self._stamp = stamp
        return self._routes

    def _unrouted(self, why: str) -> Routes:
        if not self._warned:
            self._warned = True
            logger.warning("notifications go to the platform channel only", extra={"reason": why})
        return Routes()

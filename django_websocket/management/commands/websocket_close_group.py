"""``manage.py websocket_close_group NAME [--code CODE] [--reason TEXT]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import conf, groups


class Command(BaseCommand):
    """Close every member of a group, in every server process (``groups.close``)."""

    help = (
        "Close every WebSocket in group NAME, in every process and host that the "
        "WEBSOCKET_GROUPS backend reaches (Redis; the in-process backend reaches only "
        "this command's own process, so nothing)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``NAME``, ``--code`` (default 1000) and ``--reason``."""
        parser.add_argument("name", help="the group's name")
        parser.add_argument("--code", type=int, default=1000, help="close code (default 1000)")
        parser.add_argument("--reason", default="", help="close reason (at most 123 bytes)")

    def handle(self, *args: Any, name: str, code: int, reason: str, **options: Any) -> None:
        """Validate, then publish the close; errors are ``CommandError`` (exit status 1)."""
        try:
            groups.close(name, code, reason)
        except (TypeError, ValueError, groups.BackendUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"closed group {name} with {code}" + (f" {reason!r}" if reason else ""))
        if conf.get("WEBSOCKET_GROUPS").get("BACKEND", "inprocess") == "inprocess":
            self.stderr.write(
                "WEBSOCKET_GROUPS uses the in-process backend: a command reaches no server's "
                "sockets (configure the Redis backend, see docs/groups.md)"
            )

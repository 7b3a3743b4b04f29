"""Helpers shared by the server scripts: fd limit, port argument."""

from __future__ import annotations

import resource
import sys


def raise_nofile() -> None:
    """Raise the soft open-files limit to the hard limit (10,000 idle sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def port_arg() -> int:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PORT")
    return int(sys.argv[1])


HOST = "127.0.0.1"  # loopback only, always

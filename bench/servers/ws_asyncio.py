"""The ``websockets`` library's asyncio server (its C speedups build masks in C)."""

from __future__ import annotations

import asyncio
import os
import sys

from websockets.asyncio.server import serve

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from servers.common import HOST, port_arg, raise_nofile


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(port: int) -> None:
    # compression=None: no permessage-deflate (the throughput clients never
    # offer it either); BENCH_COMPRESSION=default keeps the library's default
    # ("deflate", its own window and memLevel) for the compressed idle
    # workload.  Other options are the library's defaults (1 MiB max_size,
    # 20 s keepalive pings).
    compression = "deflate" if os.environ.get("BENCH_COMPRESSION") == "default" else None
    async with serve(echo, HOST, port, compression=compression, backlog=2048) as server:
        await server.serve_forever()


if __name__ == "__main__":
    raise_nofile()
    asyncio.run(main(port_arg()))

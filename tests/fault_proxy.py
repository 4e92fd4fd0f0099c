"""A TCP proxy in front of the real server that fails the first connections in one way a real network or server
does: a reset during the connect, a server that accepts and never answers (a connect that times out), one still
loading its data (`-LOADING`), or a replica just demoted (`-READONLY`). Later connections pass through untouched."""

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

ERRORS = {
    "loading": b"-LOADING Valkey is loading the dataset in memory\r\n",
    "readonly": b"-READONLY You can't write against a read only replica.\r\n",
}


def _commands(buffer: bytearray) -> int:
    """How many whole RESP commands (arrays of bulk strings) `buffer` starts with; consumes them."""
    count = 0
    while True:
        pos = 0
        if not buffer.startswith(b"*"):
            return count
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return count
        items = int(buffer[1:end])
        pos = end + 2
        for _ in range(items):
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                return count
            length = int(buffer[pos + 1 : end])
            pos = end + 2 + length + 2
            if pos > len(buffer):
                return count
        del buffer[:pos]
        count += 1


@dataclass
class FaultProxy:
    upstream_port: int
    mode: str  # "reset", "stall", "loading", "readonly"
    failing: int  # how many connections fail before the rest pass
    port: int = 0
    seen: int = 0
    _server: asyncio.Server | None = None
    _stalled: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._stalled:
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen += 1
        if self.seen <= self.failing:
            await self._fail(reader, writer)
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True)

    async def _fail(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            writer.close()
            return
        if self.mode == "stall":
            self._stalled.append(writer)  # accepted, never answered, closed only at the end
            return
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                buffer += data
                if n := _commands(buffer):
                    writer.write(ERRORS[self.mode] * n)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()

"""A shard's chunk requests and replies over a local Unix socket: one frame each way per chunk.

A Ray actor call costs 1-3 ms on a 2-core machine (task submission, the
raylet's and the core worker's threads, gRPC), several times a one-day chunk
of kernel work. Shards on the coordinator's node instead keep one Unix
stream socket open to it while the clock runs: the coordinator sends each
shard its chunk request as a frame and reads the reply frame (the digest
itself is in the shared-memory mailbox, :mod:`raybt.chunk_digest`), a few
tens of microseconds. Plain Python, no Ray: :mod:`raybt.ray.actors` starts
the shards' :func:`serve_channel` loops as actor calls and stops them (an
empty frame) before any other call to those actors.

Frames are an 8-byte little-endian length and that many bytes. A shard
connecting first sends the run's secret token and its index, so that no
other local process can take a shard's place; the listening address is in
Linux's abstract socket namespace (no file to clean up) or, elsewhere, a
socket file in a private temporary folder.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

_LENGTH = struct.Struct("<q")
_HELLO = struct.Struct("<16sq")  # token, shard index


class ChannelClosed(ConnectionError):
    """The other end of a channel went away (its process died, or it closed the connection)."""


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise ChannelClosed("the other end closed the channel")
        got += n
    return bytes(buffer)


def recv_frame(sock: socket.socket) -> bytes:
    """The next frame's payload; :class:`ChannelClosed` at the end of the stream."""
    (size,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    if size < 0:
        raise ChannelClosed(f"a frame of negative length {size}")
    return _recv_exactly(sock, size)


class ChannelListener:
    """The coordinator's end: a listening Unix socket and the connections of the shards it expects."""

    def __init__(self):
        self.token = secrets.token_bytes(16)
        self._folder = None
        if sys.platform.startswith("linux"):
            self.address = f"\0raybt-{secrets.token_hex(12)}"
        else:
            self._folder = tempfile.mkdtemp(prefix="raybt-")
            self.address = str(Path(self._folder) / "chunks.sock")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(self.address)
        self._socket.listen()

    def accept(self, indices, alive, poll_seconds: float = 0.5, timeout: float = 600.0) -> dict:
        """``{index: connection}`` once every shard in ``indices`` has connected and said who it is.

        ``alive()`` is asked between waits: False (a shard's serving call ended before it connected)
        raises :class:`ChannelClosed`. Connections with a wrong token or index are closed and ignored.
        """
        wanted = set(int(i) for i in indices)
        connections = {}
        deadline = time.monotonic() + timeout
        self._socket.settimeout(poll_seconds)
        try:
            while wanted - connections.keys():
                try:
                    conn, _ = self._socket.accept()
                except socket.timeout:
                    if not alive():
                        raise ChannelClosed("a shard stopped before it connected") from None
                    if time.monotonic() > deadline:
                        raise ChannelClosed(f"shards {sorted(wanted - connections.keys())} did not connect "
                                            f"within {timeout:.0f} s") from None
                    continue
                conn.settimeout(poll_seconds)
                try:
                    token, index = _HELLO.unpack(_recv_exactly(conn, _HELLO.size))
                except (OSError, ChannelClosed):
                    conn.close()
                    continue
                if token != self.token or index not in wanted or index in connections:
                    conn.close()
                    continue
                conn.settimeout(None)
                connections[index] = conn
        except BaseException:
            for conn in connections.values():
                conn.close()
            raise
        return connections

    def close(self) -> None:
        self._socket.close()
        if self._folder is not None:
            Path(self.address).unlink(missing_ok=True)
            os.rmdir(self._folder)
            self._folder = None


def serve_channel(address: str, token: bytes, index: int, handle) -> int:
    """A shard's end: connect to ``address``, then answer each request frame with ``handle(request)``
    until an empty frame (or the coordinator's end closing); returns how many it answered."""
    served = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(address)
        sock.sendall(_HELLO.pack(token, index))
        while True:
            try:
                request = recv_frame(sock)
            except ChannelClosed:
                return served
            if not request:
                return served
            send_frame(sock, handle(request))
            served += 1

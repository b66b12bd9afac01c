"""raybt.chunk_channel: the local socket a shard on the coordinator's node takes its chunks over."""

from __future__ import annotations

import socket
import threading

import pytest

from raybt.chunk_channel import ChannelClosed, ChannelListener, recv_frame, send_frame, serve_channel


def _serving(listener, index, handle, token=None):
    out = {}

    def run():
        try:
            out["served"] = serve_channel(listener.address, token or listener.token, index, handle)
        except RuntimeError as exc:  # what the shard raised: the serving call ends with it
            out["raised"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_frames_are_answered_in_order_until_the_empty_frame():
    listener = ChannelListener()
    threads = [_serving(listener, i, lambda request, i=i: request[::-1] + bytes([i])) for i in (0, 1)]
    connections = listener.accept([0, 1], alive=lambda: True)
    try:
        for k in range(50):
            payloads = {i: bytes([k, i]) * (1 + 700 * k) for i in connections}  # up to 70 KB a frame
            for i, conn in connections.items():
                send_frame(conn, payloads[i])
            for i, conn in connections.items():
                assert recv_frame(conn) == payloads[i][::-1] + bytes([i])
        for conn in connections.values():
            send_frame(conn, b"")
        for thread, out in threads:
            thread.join(10)
            assert out["served"] == 50
    finally:
        for conn in connections.values():
            conn.close()
        listener.close()


def test_a_stranger_without_the_token_is_turned_away():
    listener = ChannelListener()
    stranger = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stranger.connect(listener.address)
    stranger.sendall(b"\0" * 24)  # a wrong token for shard 0
    thread, _ = _serving(listener, 0, lambda request: request)
    connections = listener.accept([0], alive=lambda: True)
    assert stranger.recv(1) == b""  # closed by the listener
    send_frame(connections[0], b"x")
    assert recv_frame(connections[0]) == b"x"
    send_frame(connections[0], b"")
    thread.join(10)
    connections[0].close()
    listener.close()
    stranger.close()


def test_a_shard_gone_mid_run_closes_the_channel():
    listener = ChannelListener()

    def fail(request):
        raise RuntimeError("the shard's process died")

    thread, out = _serving(listener, 0, fail)
    connections = listener.accept([0], alive=lambda: True)
    send_frame(connections[0], b"chunk")
    with pytest.raises(ChannelClosed):
        recv_frame(connections[0])
    thread.join(10)
    assert "died" in str(out["raised"])  # the serving call's own error, for the coordinator to raise
    connections[0].close()
    listener.close()


def test_a_shard_that_never_connects_is_noticed():
    listener = ChannelListener()
    with pytest.raises(ChannelClosed, match="stopped before it connected"):
        listener.accept([0], alive=lambda: False, poll_seconds=0.05)
    listener.close()

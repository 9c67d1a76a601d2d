"""connections.accept_one_per_wakeup: every waiting connection is still accepted (one per readiness event, the
rest on the next turns), and none after the handler is removed."""

from __future__ import annotations

import asyncio
import socket

import pytest

from server.connections import accept_one_per_wakeup


@pytest.mark.gen_test(timeout=10)
async def test_every_waiting_connection_is_accepted_one_per_wakeup_until_removed():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    accepted: list[socket.socket] = []
    remove = accept_one_per_wakeup(listener, lambda conn, _address: accepted.append(conn))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
    try:
        for _ in range(200):
            if len(accepted) == 5:
                break
            await asyncio.sleep(0.005)
        assert len(accepted) == 5
        remove()
        late = socket.create_connection(listener.getsockname())  # queued by the kernel, never accepted
        clients.append(late)
        await asyncio.sleep(0.05)
        assert len(accepted) == 5
    finally:
        for s in (*clients, *accepted, listener):
            s.close()

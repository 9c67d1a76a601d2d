"""A real SMTP server for tests (aiosmtpd, on a free port in its own thread) and a way to read its mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from tornado.testing import bind_unused_port


class Inbox:
    """aiosmtpd's handler: every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, count: int = 1, within: float = 15.0) -> list[EmailMessage]:
        """The messages to the address once there are `count` of them (fails after `within` seconds)."""
        deadline = time.monotonic() + within
        while len(self.to(address)) < count:
            assert time.monotonic() < deadline, f"no mail to {address}: {[m['To'] for m in self.messages]}"
            await asyncio.sleep(0.05)
        return self.to(address)


async def outbox_settled(db: Any, within: float = 15.0) -> None:
    """Wait until the sender has marked every message it delivered (the SMTP server has it a moment before)."""
    deadline = time.monotonic() + within
    while (await db.fetch_one("SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL AND failed_at_ms IS NULL"))[0]:
        assert time.monotonic() < deadline, "the outbox still holds unsent messages"
        await asyncio.sleep(0.05)


def token_in(message: EmailMessage) -> str:
    """The single-use token a message carries."""
    text = message.get_content()
    found = re.search(r"token=([A-Za-z0-9_-]{43,})", text) or re.search(r"[:：] ?([A-Za-z0-9_-]{43,})\s*$", text, re.M)
    assert found, text
    return found.group(1)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 and its inbox."""
    sock, port = bind_unused_port()
    sock.close()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def mail_settings(port: int, **more: Any) -> dict[str, Any]:
    """plugin_settings for the accounts plugin sending to the test SMTP server, polling often."""
    return {"accounts": {"mail_transport": "smtp", "smtp_url": f"smtp://127.0.0.1:{port}", "mail_poll_seconds": 0.05,
                         "link_base": "https://app.example.com", **more}}

"""argon2id hashing, always run in a worker thread so the event loop never waits on it."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hash and verify; verify_absent() spends the same time when there is no account."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """An argon2id hash of password."""
        return await asyncio.get_running_loop().run_in_executor(None, self.hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str, password: str) -> bool:
        """True when password matches the stored hash."""
        return await asyncio.get_running_loop().run_in_executor(None, self._verify, stored, password)

    async def verify_absent(self, password: str) -> bool:
        """Do the work of a verification against a dummy hash; always False."""
        if self._dummy is None:
            self._dummy = await self.hash("not-a-real-password-at-all")
        await self.verify(self._dummy, password)
        return False

"""What logging in and changing credentials need, built once: hashing, tokens, roles, revocations, limits."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import TokenSigner
from server.changes import Changes
from server.config import Config
from server.passwords import Passwords
from server.plugins.accounts.settings import AccountsSettings
from server.rbac import RoleMap
from server.services.revocations import RevocationCache


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed per account and per client address inside the window."""

    max_failures: int
    max_failures_per_address: int
    window_seconds: int

    @classmethod
    def from_config(cls, config: Config) -> LoginLimits:
        return cls(config.login_max_failures, config.login_max_failures_per_address, config.login_window_seconds)


@dataclass(frozen=True, slots=True)
class Accounts:
    """The accounts plugin's collaborators (the application's own, so revocations and roles stay shared)."""

    passwords: Passwords
    signer: TokenSigner
    roles: RoleMap
    revocations: RevocationCache
    limits: LoginLimits
    changes: Changes  # told of credential changes in their transaction (a calendar feed ends with a password)
    settings: AccountsSettings

    def scopes_for(self, role: str, *, email_verified: bool) -> frozenset[str]:
        """The role's scopes; with require_verified_email, an unverified account gets none of the ':write' ones
        (its writes answer 403/1004 until it verifies and refreshes its token)."""
        scopes = self.roles.scopes_for(role)
        if self.settings.require_verified_email and not email_verified:
            return frozenset(s for s in scopes if not s.endswith(":write"))
        return scopes

    @classmethod
    def from_config(cls, config: Config) -> Accounts:
        """A fresh set for a process without an application (the command line)."""
        return cls(Passwords(time_cost=config.password_hash_time_cost, memory_kib=config.password_hash_memory_kib,
                             max_queued=config.password_hash_max_queued, retry_after=config.retry_after),
                   TokenSigner(config.signing_keys, token_expiration=config.token_expiration),
                   RoleMap(config.roles, url=config.rbac_url, refresh_seconds=config.rbac_refresh_seconds),
                   RevocationCache(refresh_seconds=config.revocation_refresh_seconds,
                                   token_expiration=config.token_expiration),
                   LoginLimits.from_config(config), Changes(),
                   AccountsSettings.model_validate(config.plugin_settings.get("accounts", {})))

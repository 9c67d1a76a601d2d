"""`main.py create-admin` changes a password and revokes the earlier tokens in one transaction: when the
database refuses the revocation (a real trigger), the new password is not kept either."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys

import pytest

from server.plugins.accounts.services.users import get_user
from tests.factories import PASSWORD, create_user, token_for
from tests.processes import ROOT, clean_env

NEW_PASSWORD = "rotated-secret-42"


def create_admin(email: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(PET_API_DATABASE_URL=database_url, PET_API_ADMIN_PASSWORD=NEW_PASSWORD)
    return subprocess.run([sys.executable, "main.py", "create-admin", "--env=test", "--email", email], cwd=ROOT,
                          env=env, text=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.gen_test(timeout=90)
async def test_create_admin_that_cannot_revoke_keeps_the_old_password_and_role(app, api, mysql_url,
                                                                                revocations_fail):
    user = await create_user(app)
    token = token_for(app, user.id)
    revocations_fail()
    run = functools.partial(create_admin, user.email, mysql_url)
    result = await asyncio.get_running_loop().run_in_executor(None, run)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr

    row = await get_user(app.db, user_id=user.id)
    assert (row.password_hash, row.role, row.disabled) == (user.password_hash, "user", False)
    refused = await api.post("/v1/tokens", json={"account": user.email, "secret": NEW_PASSWORD})
    assert (refused.status, refused.body["error_code"]) == (401, 1003), refused.body
    old = await api.post("/v1/tokens", json={"account": user.email, "secret": PASSWORD})
    assert old.status == 201, old.body
    assert "users:admin" not in old.body["data"]["scopes"]
    me = await api.get("/v1/users/me", token=token)  # nothing changed, so nothing was revoked
    assert (me.status, me.body["data"]["id"]) == (200, user.id), me.body

"""Security events (ASVS 16.3.1-16.3.3) through HTTP: the `pet_api.security` lines of failed and throttled
logins, a replayed refresh token, a password reset and an administrator disabling an account name the event,
its outcome, the user, the client address and the request id, and never a password or a token."""

from __future__ import annotations

import ast
import asyncio
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from server.logs import JSONFormatter
from server.security_events import audited, security_event
from tests.factories import PASSWORD, Response, assert_error, both_backends, create_user, user_with_token
from tests.mail import Inbox, mail_settings, smtp_server, token_in  # noqa: F401 - smtp_server is a fixture

WRONG_PASSWORD = "not-the-right-horse"
NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture
def config_overrides(smtp_server: tuple[Inbox, int]) -> dict[str, Any]:  # noqa: F811 - the fixture above
    return {"plugin_settings": mail_settings(smtp_server[1]), "login_max_failures": 3}


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="pet_api.security")
    return caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The security events so far, as the JSON log writes them."""
    formatter = JSONFormatter()
    return [orjson.loads(formatter.format(r)) for r in caplog.records if r.name == "pet_api.security"]


def assert_no_secret(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    # the server's lines (not the test SMTP server's, which shows what it received)
    written = "\n".join(JSONFormatter().format(r) for r in caplog.records if r.name.startswith("pet_api"))
    for secret in secrets:
        assert secret not in written, f"logged: {secret[:12]}..."
    assert "$argon2" not in written and "Bearer" not in written


def about(response: Response) -> dict[str, Any]:
    """The fields every event of this request carries."""
    return {"client": "127.0.0.1", "request_id": response.headers["X-Request-ID"]}


def without_time(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != "time"}


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_logins_log_success_and_why_they_failed_never_the_password(api, app, events):
    user = await create_user(app)
    disabled = await create_user(app, disabled=True)
    wrong = await api.login(user.email, WRONG_PASSWORD)
    unknown = await api.login("nobody-here@example.com", PASSWORD)
    refused = await api.login(disabled.email)
    for response in (wrong, unknown, refused):  # the answers stay alike
        assert_error(response, 401, 1003, "POST /v1/tokens", "wrong account or password")
    ok = await api.login(user.email)
    assert ok.status == 201, ok.body
    failure = {"level": "WARNING", "logger": "pet_api.security", "message": "login", "event": "login",
               "outcome": "failure", "error_code": 1003}
    assert [without_time(line) for line in lines(events)] == [
        {**failure, **about(wrong), "user_id": user.id, "reason": "wrong_password"},
        {**failure, **about(unknown), "reason": "unknown_account"},
        {**failure, **about(refused), "user_id": disabled.id, "reason": "disabled"},
        {"level": "INFO", "logger": "pet_api.security", "message": "login", "event": "login", "outcome": "success",
         **about(ok), "user_id": user.id},
    ]
    assert_no_secret(events, PASSWORD, WRONG_PASSWORD, "nobody-here@example.com", ok.body["data"]["token"],
                     ok.body["data"]["refresh_token"])


@pytest.mark.gen_test(timeout=60)
async def test_a_throttled_login_is_logged_as_throttled(api, app, events):
    user = await create_user(app)
    for _ in range(3):
        assert (await api.login(user.email, WRONG_PASSWORD)).status == 401
    throttled = await api.login(user.email)
    assert_error(throttled, 429, 1006, "POST /v1/tokens")
    last = lines(events)[-1]
    assert (last["event"], last["outcome"], last["reason"], last["error_code"]) == ("login", "failure", "throttled",
                                                                                   1006)
    assert last["request_id"] == throttled.headers["X-Request-ID"] and last["client"] == "127.0.0.1"
    assert_no_secret(events, PASSWORD, WRONG_PASSWORD)


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_replayed_refresh_token_is_logged_with_the_session_it_ended(api, app, events):
    user = await create_user(app)
    first = (await api.login(user.email)).body["data"]
    rotated = await api.post("/v1/tokens/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status == 201, rotated.body
    replayed = await api.post("/v1/tokens/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(replayed, 401, 10033, "POST /v1/tokens/refresh")
    session_id = (await app.db.fetch_one("SELECT id FROM sessions WHERE user_id = %s", (user.id,)))[0]
    login, refreshed, replay = lines(events)
    assert (login["event"], refreshed["event"], refreshed["outcome"]) == ("login", "token_refreshed", "success")
    assert refreshed["user_id"] == user.id and refreshed["request_id"] == rotated.headers["X-Request-ID"]
    assert without_time(replay) == {
        "level": "WARNING", "logger": "pet_api.security", "message": "token_refreshed", "event": "token_refreshed",
        "outcome": "failure", "error_code": 10033, "reason": "replayed", "user_id": user.id,
        "session_id": int(session_id), "sessions_ended": 1, **about(replayed)}
    assert_no_secret(events, PASSWORD, first["token"], first["refresh_token"], rotated.body["data"]["token"],
                     rotated.body["data"]["refresh_token"])


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_password_reset_is_logged_when_asked_confirmed_and_reused(api, app, events, smtp_server):  # noqa: F811
    inbox: Inbox = smtp_server[0]
    user = await create_user(app)
    asked = await api.post("/v1/password-resets", json={"email": user.email})
    assert asked.status == 202
    token = token_in((await inbox.wait_for(user.email))[0])
    confirmed = await api.post("/v1/password-resets/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert confirmed.status == 200, confirmed.body
    reused = await api.post("/v1/password-resets/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert_error(reused, 401, 10031, "POST /v1/password-resets/confirm")
    assert [(line["event"], line["outcome"], line.get("user_id"), line.get("reason"), line["request_id"])
            for line in lines(events)] == [
        ("password_reset_requested", "success", None, None, asked.headers["X-Request-ID"]),  # never says who
        ("password_reset_confirmed", "success", user.id, None, confirmed.headers["X-Request-ID"]),
        ("password_reset_confirmed", "failure", None, "invalid_token", reused.headers["X-Request-ID"]),
    ]
    assert_no_secret(events, token, NEW_PASSWORD, user.email)


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_administrator_disabling_an_account_is_logged_with_actor_and_target(api, app, events):
    admin, admin_token = await user_with_token(app, role="admin")
    user = await create_user(app)
    for _ in range(2):
        assert (await api.login(user.email)).status == 201
    disabled = await api.patch(f"/v1/users/{user.id}", json={"disabled": True}, token=admin_token)
    assert disabled.status == 200 and disabled.body["data"]["disabled"] is True
    own = await api.patch(f"/v1/users/{admin.id}", json={"disabled": True}, token=admin_token)
    assert_error(own, 409, 1005, f"PATCH /v1/users/{admin.id}")
    done, refused = lines(events)[2:]
    assert without_time(done) == {
        "level": "INFO", "logger": "pet_api.security", "message": "user_changed_by_admin",
        "event": "user_changed_by_admin", "outcome": "success", "user_id": admin.id, "target_user_id": user.id,
        "disabled": True, "sessions_ended": 2, **about(disabled)}
    assert (refused["outcome"], refused["reason"], refused["target_user_id"]) == ("failure", "conflict", admin.id)
    assert "sessions_ended" not in refused
    assert_no_secret(events, admin_token)


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_administrator_deleting_an_account_is_logged_with_the_sessions_it_ended(api, app, events):
    admin, admin_token = await user_with_token(app, role="admin")
    user = await create_user(app)
    for _ in range(3):
        assert (await api.login(user.email)).status == 201
    deleted = await api.delete(f"/v1/users/{user.id}", token=admin_token)
    assert deleted.body == {"code": 200, "data": None, "message": "ok"}
    promoted = await api.patch(f"/v1/users/{admin.id}", json={"role": "admin"}, token=admin_token)
    assert promoted.status == 200  # nothing changed: no line
    *_, done = lines(events)
    assert without_time(done) == {
        "level": "INFO", "logger": "pet_api.security", "message": "account_deleted", "event": "account_deleted",
        "outcome": "success", "user_id": admin.id, "target_user_id": user.id, "sessions_ended": 3, **about(deleted)}


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_administrators_patch_that_changes_nothing_is_not_logged(api, app, events):
    _, admin_token = await user_with_token(app, role="admin")
    user = await create_user(app)
    same = await api.patch(f"/v1/users/{user.id}", json={"role": "user", "disabled": False}, token=admin_token)
    assert (same.status, same.body["data"]["role"], same.body["data"]["disabled"]) == (200, "user", False)
    assert lines(events) == []
    promoted = await api.patch(f"/v1/users/{user.id}", json={"role": "admin", "disabled": False}, token=admin_token)
    assert promoted.status == 200
    assert [(line["event"], line["outcome"], line["role"]) for line in lines(events)] == [
        ("user_changed_by_admin", "success", "admin")]


@both_backends
@pytest.mark.gen_test
async def test_a_nickname_patch_of_the_nickname_the_account_has_is_not_logged(api, app, events):
    # As an administrator's PATCH of the values an account has: nothing changes, nothing is written, no line says
    # "nickname_changed" (audit admin, left: the account's own PATCH still logged one).
    user, token = await user_with_token(app)
    stamp = "SELECT updated_at FROM users WHERE id = %s"
    before = await app.db.fetch_one(stamp, (user.id,))
    same = await api.patch("/v1/users/me", json={"nickname": user.nickname}, token=token)
    assert (same.status, same.body["data"]["nickname"], same.body["data"]["sessions_ended"]) == (200, user.nickname, 0)
    assert await app.db.fetch_one(stamp, (user.id,)) == before  # nothing written
    assert lines(events) == []
    renamed = await api.patch("/v1/users/me", json={"nickname": "Neo"}, token=token)
    assert (renamed.status, renamed.body["data"]["nickname"]) == (200, "Neo")
    assert [(line["event"], line["outcome"], line["user_id"]) for line in lines(events)] == [
        ("nickname_changed", "success", user.id)]


def test_only_known_fields_are_written_so_a_careless_call_cannot_log_a_secret(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="pet_api.security")
    security_event("login", outcome="success", user_id=7, password=PASSWORD, token="tok-" + "x" * 40)
    [line] = lines(caplog)
    assert without_time(line) == {"level": "INFO", "logger": "pet_api.security", "message": "login",
                                  "event": "login", "outcome": "success", "user_id": 7}


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_ending_sessions_changing_the_password_and_deleting_the_account_are_logged(api, app, events):
    user = await create_user(app)
    await api.login(user.email)
    current = (await api.login(user.email)).body["data"]["token"]
    others = await api.delete("/v1/sessions?others=true", token=current)
    assert (others.status, others.body["data"]) == (200, {"sessions_ended": 1})
    changed = await api.patch("/v1/users/me", json={"password": NEW_PASSWORD, "current_password": PASSWORD},
                              token=current)
    assert changed.status == 200, changed.body
    again = await api.login(user.email, NEW_PASSWORD)
    current = again.body["data"]["token"]
    refused = await api.delete("/v1/users/me", json={"password": WRONG_PASSWORD}, token=current)
    assert_error(refused, 403, 1004, "DELETE /v1/users/me")
    deleted = await api.delete("/v1/users/me", json={"password": NEW_PASSWORD}, token=current)
    assert deleted.status == 200, deleted.body
    assert [(line["event"], line["outcome"], line["user_id"], line.get("reason"), line.get("sessions_ended"),
             line.get("target_user_id"), line["request_id"]) for line in lines(events)[2:]] == [
        ("other_sessions_ended", "success", user.id, None, 1, None, others.headers["X-Request-ID"]),
        ("password_changed", "success", user.id, None, 0, None, changed.headers["X-Request-ID"]),
        ("login", "success", user.id, None, None, None, again.headers["X-Request-ID"]),
        ("account_deleted", "failure", user.id, "forbidden", None, user.id, refused.headers["X-Request-ID"]),
        ("account_deleted", "success", user.id, None, 2, user.id, deleted.headers["X-Request-ID"]),
    ]
    assert_no_secret(events, PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, current, user.email)


def test_a_request_cancelled_mid_action_is_not_logged_as_a_success(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="pet_api.security")
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip="10.0.0.9"), request_id="r-1")
    with pytest.raises(asyncio.CancelledError), audited(handler, "password_changed", user_id=3):
        raise asyncio.CancelledError
    [line] = lines(caplog)
    assert without_time(line) == {"level": "WARNING", "logger": "pet_api.security", "message": "password_changed",
                                  "event": "password_changed", "outcome": "cancelled", "user_id": 3,
                                  "client": "10.0.0.9", "request_id": "r-1"}


ROOT = Path(__file__).resolve().parent.parent


def logged_event_names() -> set[str]:
    """Every event name the server's sources can log: the name given to audited() or security_event(), a literal
    or a choice between literals (`"a" if x else "b"`); any other expression fails, as the test could not read it
    (server/security_events.py itself passes the name on)."""
    names: set[str] = set()
    for path in sorted((ROOT / "server").rglob("*.py")):
        if path == ROOT / "server" / "security_events.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            position = {"audited": 1, "security_event": 0}.get(node.func.id)
            if position is None or len(node.args) <= position:
                continue
            name = node.args[position]
            choices = [name.body, name.orelse] if isinstance(name, ast.IfExp) else [name]
            for choice in choices:
                assert isinstance(choice, ast.Constant) and isinstance(choice.value, str), \
                    f"{path.relative_to(ROOT)}:{node.lineno}: an event name that is not a literal"
                names.add(choice.value)
    return names


def test_the_readme_lists_every_security_event_the_server_logs_and_no_other():
    """README's list of `event` values is what jq and SIEM filters are written from."""
    text = (ROOT / "README.md").read_text()
    listed = re.search(r"Security events \(ASVS 16\.3\).*?`event` \((.*?)\), `outcome`", text, re.S)
    assert listed is not None, "README: the security events paragraph moved"
    logged = logged_event_names()
    assert len(logged) > 10, logged  # the walk found the calls
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == logged

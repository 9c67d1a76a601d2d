"""What the load test sends: the four requests of ../shared/bench/compare.py, against any deployment."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

CREATE_BODY = b'{"name": "bench", "species": "cat"}'
READ_ONLY = ("health", "get_pet", "list_pets")
ALL = (*READ_ONLY, "create_pet")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Scenario:
    """A named request mix: each request sent is one of `requests`, picked at random."""

    name: str
    requests: tuple[Request, ...]

    def lua(self, prefix: str = "") -> str:
        """The same mix as a wrk script, its paths under `prefix` (the base URL's path: wrk sends only these)."""
        items = ",\n".join(
            "  {%s, %s, {%s}, %s}" % (_lua(r.method), _lua(prefix + r.path),  # noqa: UP031 - Lua braces
                                      ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in r.headers.items()),
                                      _lua(r.body.decode()) if r.body else "nil")
            for r in self.requests)
        return ("local reqs = {\n" + items + "\n}\n"
                "request = function()\n"
                "  local r = reqs[math.random(#reqs)]\n"
                "  return wrk.format(r[1], r[2], r[3], r[4])\n"
                "end\n")


def _lua(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for what we send


class SetupError(Exception):
    """The deployment refused what the scenarios need (bad token, no pets)."""


def call(base_url: str, method: str, path: str, *, token: str | None = None, body: bytes | None = None,
         timeout: float = 10) -> tuple[int, object]:
    """One JSON request with urllib: (status, decoded body)."""
    req = urllib.request.Request(base_url + path, method=method, data=body)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own URL
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())


def _decode(raw: bytes) -> object:
    """The JSON body; a body that is not JSON (a proxy's HTML page) as the start of its text, in one line."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return " ".join(raw.decode("utf-8", "replace").split())[:200]


def build(names: list[str], base_url: str, token: str | None, pet_ids: list[int]) -> list[Scenario]:
    """The scenarios asked for; get_pet reads the caller's own pets (found with GET /v1/pets)."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    if any(n != "health" for n in names) and not token:
        raise SetupError("these scenarios need a token: --token or PET_API_BENCH_TOKEN")
    out = []
    for name in names:
        if name == "health":
            out.append(Scenario(name, (Request("GET", "/v1/health"),)))
        elif name == "get_pet":
            ids = pet_ids or _own_pet_ids(base_url, token)
            out.append(Scenario(name, tuple(Request("GET", f"/v1/pets/{i}", auth) for i in ids)))
        elif name == "list_pets":
            out.append(Scenario(name, (Request("GET", "/v1/pets?limit=20", auth),)))
        elif name == "create_pet":
            headers = {**auth, "Content-Type": "application/json"}
            out.append(Scenario(name, (Request("POST", "/v1/pets", headers, CREATE_BODY),)))
        else:
            raise SetupError(f"unknown scenario {name!r}: choose from {', '.join(ALL)}")
    return out


def _own_pet_ids(base_url: str, token: str | None) -> list[int]:
    status, body = call(base_url, "GET", "/v1/pets?limit=100", token=token)
    if status != 200 or not isinstance(body, dict):
        raise SetupError(f"GET /v1/pets answered {status}: {body}")
    ids = [pet["id"] for pet in body["data"]]
    if not ids:
        raise SetupError("the token's user has no pets: create some first, or pass --pet-id")
    return ids

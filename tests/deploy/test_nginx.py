"""Past one machine: two instances on one MariaDB database behind Debian's nginx, configured by
deploy/nginx.conf (ports substituted). Tokens issued by one instance work on the other, a revocation on one is
refused by the other within the revocation refresh bound, and stopping one instance under a steady read load
loses no request."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.servers import Load, wait_for
from tests.plugins.sync.client import EventStream
from tests.processes import ROOT, Reply, ServerProcess, Servers, free_port, get, login, request

pytestmark = pytest.mark.slow
NGINX_SITE = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def site_config(ports: tuple[int, ...], listen: int, *, logs: Path, tls: tuple[int, Path, Path] | None = None) -> str:
    """deploy/nginx.conf with the instances' and nginx's ports substituted (each line must be there exactly once),
    IPv4 only, its logs in the folder logs; with tls=(port, certificate, key), its TLS lines uncommented on that
    port."""
    text = NGINX_SITE.read_text()
    upstreams = "\n".join(f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=5s;" for port in ports)
    text, count = re.subn(r"^    server 127\.0\.0\.1:8000 max_fails=3 fail_timeout=5s;$", upstreams, text, flags=re.M)
    assert count == 1, "deploy/nginx.conf has no 'server 127.0.0.1:8000' upstream line"
    replacements = [(r"listen 80;", f"listen 127.0.0.1:{listen};"), (r"\n *listen \[::\]:80;", ""),
                    (r"/var/log/nginx/", f"{logs}/")]
    if tls is not None:
        port, certificate, key = tls
        replacements += [(r"# listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"), (r"\n *# listen \[::\]:443 ssl;", ""),
                         (r"# ssl_certificate /\S+;", f"ssl_certificate {certificate};"),
                         (r"# ssl_certificate_key /\S+;", f"ssl_certificate_key {key};"),
                         (r"# (ssl_protocols|ssl_session_cache) ", r"\1 ")]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count >= 1, f"deploy/nginx.conf has no {pattern!r}"
    return text


def main_config(prefix: Path) -> str:
    """An nginx.conf of its own (no /etc/nginx, /var/log or /run) around the site file."""
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind}_temp;"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
{temp}
    include {prefix}/pet-api.conf;
}}
"""


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    port: int  # nginx
    logs: Path  # nginx's access.log and error.log


@pytest.fixture
def cluster(tmp_path: Path, servers: Servers) -> Iterator[Cluster]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    nginx = None
    try:
        # Behind the proxy: the client address comes from X-Real-IP.
        a, b = (servers.start(ready=False, PET_API_XHEADERS="true") for _ in range(2))
        a.wait_ready()
        b.wait_ready()
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        port = free_port()
        (prefix / "pet-api.conf").write_text(site_config((a.port, b.port), port, logs=prefix))
        (prefix / "nginx.conf").write_text(main_config(prefix))
        nginx = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                  "-e", str(prefix / "error.log"), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def answering() -> bool:
            assert nginx.poll() is None, nginx.stderr.read().decode()  # type: ignore[union-attr]
            try:
                return get(port, "/v1/health").status == 200
            except OSError:
                return False

        wait_for(answering, "nginx answering")
        yield Cluster(a, b, port, prefix)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)


def test_a_token_works_on_every_instance_and_a_revocation_reaches_them_all(cluster):
    user_id, token = login(cluster.a.port)
    auth = {"Authorization": f"Bearer {token}"}
    on_b = get(cluster.b.port, "/v1/tokens/current", headers=auth)
    assert on_b.status == 200 and on_b.json()["data"]["user_id"] == user_id

    revoked = request(cluster.a.port, "DELETE", "/v1/tokens/current", headers=auth)
    assert revoked.status == 200, revoked.body
    revoked_at = time.monotonic()
    wait_for(lambda: get(cluster.b.port, "/v1/tokens/current", headers=auth).status == 401,
             "instance B refusing the token revoked on A", within=5)
    took = time.monotonic() - revoked_at
    refused = get(cluster.b.port, "/v1/tokens/current", headers=auth)
    assert refused.json()["error_code"] == 10033
    assert took < 2  # the test profile refreshes revocations every 0.2 s
    through_nginx = get(cluster.port, "/v1/tokens/current", headers=auth)
    assert through_nginx.status == 401 and through_nginx.json()["error_code"] == 10033
    print(f"\nnginx: a token revoked on A was refused by B after {took:.2f} s")


def test_stopping_an_instance_under_a_steady_read_load_loses_no_request(cluster):
    _, token = login(cluster.port)
    auth = {"Authorization": f"Bearer {token}"}
    with Load(cluster.port, "/v1/users/me", threads=4, headers=auth) as load:
        time.sleep(1)
        cluster.a.signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert cluster.a.wait(30) == 0
        time.sleep(1)
    after = [o for o in load.outcomes if o.at > stopped_at]
    assert load.failures == []
    assert len(load.outcomes) > 100 and len(after) > 20
    print(f"\nnginx: instance A stopped under load: {len(load.outcomes)} reads, 0 lost")

    assert get(cluster.port, "/metrics").json() == {"error_code": 1007, "message": "no such route",
                                                     "request": "GET /metrics"}
    cluster.b.signal(signal.SIGTERM)
    assert cluster.b.wait(30) == 0
    down = get(cluster.port, "/v1/users/me", headers=auth)  # no instance left: the API's shape, not nginx's
    assert down.status == 503
    assert down.json() == {"error_code": 1008, "message": "service unavailable", "request": "GET /v1/users/me"}
    assert down.headers["retry-after"] == "5"


@pytest.mark.gen_test(timeout=60)
async def test_an_event_stream_through_nginx_gets_each_change_as_it_happens(cluster):
    """No buffering on the way: each event arrives while the stream stays open (before any heartbeat would push a
    buffer out), and the stream resumes through nginx with Last-Event-ID."""
    _, token = login(cluster.a.port)
    events = await EventStream.open(f"http://127.0.0.1:{cluster.port}", token=token)
    assert (events.status, events.headers["content-type"]) == (200, "text/event-stream; charset=utf-8")
    assert await events.next() == {"retry": "1000"}
    for name in ("first", "second"):
        created = request(cluster.b.port, "POST", "/v1/pets", json={"name": name, "species": "cat"}, token=token)
        assert created.status == 201
        event = await events.next_change(wait=10)
        assert (event["event"], event["data"]["data"]) == ("change", created.json()["data"])
    events.close()
    missed = request(cluster.b.port, "POST", "/v1/pets", json={"name": "missed", "species": "cat"}, token=token)
    resumed = await EventStream.open(f"http://127.0.0.1:{cluster.port}", token=token,
                                     headers={"Last-Event-ID": event["id"]})
    assert (await resumed.next_change(wait=10))["data"]["data"] == missed.json()["data"]
    resumed.close()


def test_a_calendar_feeds_token_is_in_no_log_of_nginx_or_of_the_instances(cluster):
    """The feed URL's token is its only credential: nginx's access log shows the route's template (the instances'
    logs already do), and its error log, which quotes the request line and the upstream URL, says nothing of a
    feed, though it does of other requests failing the same way."""
    _, token = login(cluster.port)
    created = request(cluster.port, "POST", "/v1/users/me/calendar", token=token)
    assert created.status == 201, created.body
    url = created.json()["data"]["url"]
    secret = re.fullmatch(r"/v1/calendar/([A-Za-z0-9_-]{43})\.ics", url)
    assert secret, url
    feed = get(cluster.port, url)
    assert (feed.status, feed.headers["content-type"]) == (200, "text/calendar; charset=utf-8")
    variants = [f"/v1/%63alendar/{secret[1]}.ics", f"/V1/Calendar/{secret[1]}.ics/", f"{url}?x=1"]
    for path in variants:  # logged as the template, whatever the instance answers
        get(cluster.port, path)
    assert get(cluster.port, f"/V1/Calendar/{secret[1]}.ics/").json() == {
        "error_code": 1007, "message": "no such route", "request": "GET /v1/calendar/{token}.ics"}

    for instance in (cluster.a, cluster.b):  # no instance left: nginx's error log names each failed request
        instance.signal(signal.SIGTERM)
        assert instance.wait(30) == 0
    down = get(cluster.port, url)
    assert down.status == 503
    assert down.json() == {"error_code": 1008, "message": "service unavailable",
                           "request": "GET /v1/calendar/{token}.ics"}
    assert get(cluster.port, "/v1/health").status == 503

    access = (cluster.logs / "access.log").read_text()
    errors = (cluster.logs / "error.log").read_text()
    assert '"GET /v1/calendar/{token}.ics HTTP/1.1" 200 ' in access
    assert '"GET /v1/calendar/{token}.ics HTTP/1.1" 503 ' in access
    assert 'request: "GET /v1/health HTTP/1.1"' in errors  # what the feed's line would have been
    for name, text in [("nginx access.log", access), ("nginx error.log", errors), ("instance A", cluster.a.output()),
                       ("instance B", cluster.b.output())]:
        assert secret[1] not in text, name


def random_jpeg(width: int, height: int) -> bytes:
    """A real JPEG of noise (which barely compresses): about 2 bytes a pixel at quality 100."""
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "JPEG", quality=100)
    return out.getvalue()


def raw_exchange(port: int, data: bytes) -> Reply:
    """data sent as is on a new connection; the answer read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Reply(int(lines[0].split()[1]), headers, body)


def test_bodies_and_headers_the_instances_accept_pass_and_nginx_refuses_the_rest_in_the_api_shape(cluster):
    """A photo up to photo_max_bytes (8 MiB) reaches the instance, which refuses a larger one 413/1007; past 16 MiB
    nginx refuses it, in the same shape. A header line up to 64 KiB reaches the instance (431/1007 for a header
    block over max_header_size); a longer one, or a longer request line, nginx answers 431/1007 too; a request it
    cannot parse, 400/1001."""
    _, token = login(cluster.port)
    pet = request(cluster.port, "POST", "/v1/pets", json={"name": "Rex", "species": "dog"}, token=token)
    assert pet.status == 201, pet.body
    path = f"/v1/pets/{pet.json()['data']['id']}/photo"
    photo = random_jpeg(1800, 1500)
    assert 4 * 2**20 < len(photo) < 8 * 2**20
    jpeg = {"Content-Type": "image/jpeg"}
    stored = request(cluster.port, "PUT", path, body=photo, token=token, headers=jpeg, timeout=60)
    assert stored.status == 201, stored.body
    too_large = {"error_code": 1007, "message": "request body is too large", "request": f"PUT {path}"}
    for size in (12 * 2**20, 17 * 2**20):  # the instance's refusal, then nginx's
        refused = request(cluster.port, "PUT", path, body=b"\xff" * size, token=token, headers=jpeg, timeout=60)
        assert (refused.status, refused.json()) == (413, too_large), size

    assert get(cluster.port, "/v1/health", headers={"X-Big": "a" * 9000}).status == 200
    header_too_large = {"error_code": 1007, "message": "request header fields too large", "request": "GET /v1/health"}
    by_instance = get(cluster.port, "/v1/health", headers={f"X-Big-{n}": "a" * 30_000 for n in range(3)})
    by_nginx = get(cluster.port, "/v1/health", headers={"X-Big": "a" * 70_000})
    for refused in (by_instance, by_nginx):
        assert (refused.status, refused.json()) == (431, header_too_large)
    long_line = get(cluster.port, "/v1/health?q=" + "a" * 70_000)
    assert (long_line.status, long_line.json()) == (431, {**header_too_large, "request": "- -"})
    malformed = raw_exchange(cluster.port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert (malformed.status, malformed.json()) == (400, {"error_code": 1001, "message": "malformed HTTP request",
                                                          "request": "GET /v1/health"})

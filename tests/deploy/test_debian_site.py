"""Deployment on stock Debian from the README alone (issue 19 item 10): deploy/nginx.conf installed as a site
beside Debian's own nginx.conf and its enabled default site (copied into a private prefix, ports substituted),
proxying to an instance over HTTP and, with the site's TLS lines uncommented, over TLS with a self-signed
certificate made here (curl --cacert); and the README's database SQL (user and GRANTs) run as written,
enough for `main.py migrate --env=prod` and for serving."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.servers import wait_for
from tests.deploy.test_nginx import nginx_binary, site_config
from tests.mariadb_server import connect_server
from tests.processes import ROOT, ServerProcess, Servers, free_port, get, run_main, server_env

pytestmark = pytest.mark.slow
DEBIAN = Path("/etc/nginx")
MODULES = Path("/usr/lib/nginx/modules")  # Debian's prefix (/usr/share/nginx) links modules/ here
HOST = "pets.example.org"  # the site's server_name as shipped


def debian_main_config(prefix: Path) -> str:
    """Debian's /etc/nginx/nginx.conf with its includes, pid, logs and temporary files moved into prefix."""
    text = (DEBIAN / "nginx.conf").read_text()
    for old, new in [("/etc/nginx/conf.d/", f"{prefix}/conf.d/"),
                     ("/etc/nginx/sites-enabled/", f"{prefix}/sites-enabled/"),
                     ("/run/nginx.pid", f"{prefix}/nginx.pid"), ("/var/log/nginx/", f"{prefix}/")]:
        assert old in text, f"Debian's nginx.conf no longer names {old}"
        text = text.replace(old, new)
    temp = "".join(f"\n\t{kind}_temp_path {prefix}/{kind}_temp;"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return re.sub(r"^http \{", "http {" + temp, text, count=1, flags=re.M)


def debian_default_site(listen: int) -> str:
    """Debian's default site (default_server), on the test's port, IPv4 only."""
    text = (DEBIAN / "sites-available" / "default").read_text()
    text, count = re.subn(r"^\s*listen 80 default_server;", f"\tlisten 127.0.0.1:{listen} default_server;", text,
                          flags=re.M)
    assert count == 1, "Debian's default site no longer listens with 'listen 80 default_server;'"
    return re.sub(r"^\s*listen \[::\]:80 default_server;\n", "", text, flags=re.M)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args], capture_output=True,
                          text=True, timeout=30)


@dataclass
class Site:
    http: int
    https: int
    certificate: Path
    instance: ServerProcess
    test_output: str  # nginx -t's


@pytest.fixture
def site(tmp_path: Path, servers: Servers) -> Iterator[Site]:
    binary = nginx_binary()
    if binary is None or not (DEBIAN / "sites-available" / "default").is_file() or not shutil.which("openssl"):
        pytest.skip("Debian's nginx (apt-get install nginx-light) and openssl are needed")
    instance = servers.start(PET_API_XHEADERS="true")
    prefix = tmp_path / "nginx"
    for folder in ("conf.d", "sites-enabled", "tls"):
        (prefix / folder).mkdir(parents=True)
    (prefix / "modules").symlink_to(MODULES)  # modules-enabled loads them relative to the prefix
    certificate, key = prefix / "tls" / f"{HOST}.pem", prefix / "tls" / f"{HOST}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={HOST}",
                    "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    http, https = free_port(), free_port()
    (prefix / "nginx.conf").write_text(debian_main_config(prefix))
    (prefix / "sites-enabled" / "default").write_text(debian_default_site(http))
    site_text = site_config((instance.port,), http, logs=prefix, tls=(https, certificate, key))
    (prefix / "sites-enabled" / "pet-api").write_text(site_text)
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    nginx = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def answering() -> bool:
            assert nginx.poll() is None, nginx.stderr.read().decode()  # type: ignore[union-attr]
            return curl(f"http://127.0.0.1:{http}/").stdout.endswith("\n200")

        wait_for(answering, "nginx answering")
        yield Site(http, https, certificate, instance, checked.stderr)
    finally:
        nginx.terminate()
        nginx.wait(10)


def test_the_site_works_beside_debians_default_site_over_http_and_tls(site: Site):
    assert "conflicting server name" not in site.test_output and "[warn]" not in site.test_output, site.test_output
    resolve = f"{HOST}:{site.http}:127.0.0.1"
    health = curl("--resolve", resolve, f"http://{HOST}:{site.http}/v1/health")
    body, status = health.stdout.rsplit("\n", 1)
    assert (status, body) == ("200", '{"code":200,"data":{"status":"ok"},"message":"ok"}'), health.stderr
    # any other host name: Debian's default site, still the default_server
    other = curl(f"http://127.0.0.1:{site.http}/")
    assert other.stdout.endswith("\n200") and "Welcome to nginx" in other.stdout
    assert curl(f"http://127.0.0.1:{site.http}/v1/health").stdout.endswith("\n404")

    tls_resolve = f"{HOST}:{site.https}:127.0.0.1"
    url = f"https://{HOST}:{site.https}"
    signup = curl("--resolve", tls_resolve, "--cacert", str(site.certificate), "-H", "Content-Type: application/json",
                  "-d", '{"email": "tls@example.com", "password": "tls-secret-42", "nickname": "TLS"}',
                  f"{url}/v1/users")
    body, status = signup.stdout.rsplit("\n", 1)
    assert status == "201" and '"email":"tls@example.com"' in body, signup.stdout + signup.stderr
    login = curl("--resolve", tls_resolve, "--cacert", str(site.certificate), "-H", "Content-Type: application/json",
                 "-d", '{"account": "tls@example.com", "secret": "tls-secret-42"}', f"{url}/v1/tokens")
    assert login.stdout.endswith("\n201") and '"token"' in login.stdout, login.stdout + login.stderr
    unverified = curl("--resolve", tls_resolve, f"{url}/v1/health")  # the system's CAs do not know this one
    assert unverified.returncode == 60, unverified.stderr
    wait_for(lambda: '"path":"/v1/tokens"' in site.instance.output(), "the instance's access-log line of the login")


def test_the_site_proxies_to_the_socket_units_port():
    socket_unit = (ROOT / "systemd" / "pet-api.socket").read_text()
    listen = re.findall(r"^ListenStream=(?:.*:)?(\d+)$", socket_unit, flags=re.M)
    site_text = (ROOT / "deploy" / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server 127\.0\.0\.1:(\d+) ", site_text, flags=re.M)
    assert listen == upstreams == ["8000"]


README_SQL = re.compile(r"```sql\n(.*?)```", re.S)


def test_the_readmes_database_account_can_migrate_and_serve(mysql_server_url, tmp_path):
    install = (ROOT / "README.md").read_text().split("### Install", 1)[1].split("### ", 1)[0]
    sql = README_SQL.search(install)
    assert sql, "README's Install section has no ```sql block"
    name, password = f"pet_api_readme_{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    statements = [re.sub(r"\bpet_api\b", name, s.strip()).replace("<database password>", password)
                  for s in sql.group(1).split(";") if s.strip()]
    root = connect_server(mysql_server_url)
    try:
        with root.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        server_port = mysql_server_url.rsplit(":", 1)[1]
        url = f"mysql://{name}:{password}@127.0.0.1:{server_port}/{name}"
        env_file = tmp_path / "env"
        env_file.write_text(f'PET_API_SECRET_KEY={secrets.token_urlsafe(36)}\nPET_API_DATABASE_URL="{url}"\n')
        migrated = run_main("migrate", "--env=prod", "--env-file", str(env_file), timeout=120)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        admin = run_main("--env=prod", "--env-file", str(env_file), "create-admin", "--email", "ops@example.com",
                         timeout=60, PET_API_ADMIN_PASSWORD="ops-secret-123")
        assert admin.returncode == 0, admin.stdout + admin.stderr
        with ServerProcess(tmp_path / "served.log", server_env(url)) as served:  # on that account
            ready = get(served.port, "/v1/health/ready")
            assert ready.status == 200, ready.body
    finally:
        with root.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")
        root.close()
    print(f"\n{sys.argv[0]}: migrated and served with: {statements[-1]}")


def test_beside_debians_default_site_a_long_header_line_reaches_the_instance_and_a_longer_one_is_431(site: Site):
    """large_client_header_buffers is the site's, not the default server's, once nginx knows the host."""
    resolve = f"{HOST}:{site.http}:127.0.0.1"
    passed = curl("--resolve", resolve, "-H", "X-Big: " + "a" * 9000, f"http://{HOST}:{site.http}/v1/health")
    assert passed.stdout.endswith("\n200"), passed.stdout[-300:]
    refused = curl("--resolve", resolve, "-H", "X-Big: " + "a" * 70_000, f"http://{HOST}:{site.http}/v1/health")
    body, status = refused.stdout.rsplit("\n", 1)
    assert (status, body) == ("431", '{"error_code":1007,"message":"request header fields too large",'
                                     '"request":"GET /v1/health"}'), refused.stdout[-300:]

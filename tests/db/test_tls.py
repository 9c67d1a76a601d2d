"""The database link over TLS (ASVS 5.0 V12.3): ?ssl=verify|required in the mysql:// URL, against a throwaway
MariaDB that refuses plain connections (require_secure_transport=ON)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.config import ConfigError
from server.db import connect, parse_url
from server.db.mysql import why_unreachable
from server.errors import ServiceUnavailable
from tests.conftest import migrate_database, run_async
from tests.conftest import test_config as profile_config
from tests.factories import create_pet, user_with_token
from tests.mariadb_server import HOST, PrivateMariaDB, connect_server, create_database, find_tool
from tests.processes import free_port

SECRET = "hunter2-tls-secret"  # the app account's password: never in an error message


# ---- the URL options


@pytest.mark.parametrize(("query", "mode", "ca", "cert", "key"), [
    ("", "off", None, None, None),
    ("?ssl=off", "off", None, None, None),
    ("?ssl=required", "required", None, None, None),
    ("?ssl=verify", "verify", None, None, None),
    ("?ssl=verify&ssl_ca=/etc/ca%20dir/ca.pem", "verify", "/etc/ca dir/ca.pem", None, None),
    ("?ssl=required&ssl_cert=/c.pem&ssl_key=/k.pem", "required", None, "/c.pem", "/k.pem"),
])
def test_the_url_carries_the_tls_options(query, mode, ca, cert, key):
    url = parse_url(f"mysql://u:p@db1:3307,db2/pets{query}")
    assert (url.tls.mode, url.tls.ca, url.tls.cert, url.tls.key) == (mode, ca, cert, key)
    assert url.hosts == (("db1", 3307), ("db2", 3306)) and url.database == "pets"
    assert url.at("db2", 3306).tls == url.tls  # every node of a Galera URL uses the same TLS settings


@pytest.mark.parametrize(("query", "message"), [
    ("?sslmode=verify-full", "unknown option 'sslmode'"),
    ("?ssl=yes-please", "option 'ssl' must be one of off, required, verify"),
    ("?ssl=verify&ssl=off", "option 'ssl' is given twice"),
    ("?ssl=", "option 'ssl' is empty"),
    ("?ssl_ca=/ca.pem", "option 'ssl_ca' needs ssl=verify or ssl=required"),
    ("?ssl=required&ssl_ca=/ca.pem", "option 'ssl_ca' needs ssl=verify"),
    ("?ssl=verify&ssl_key=/k.pem", "option 'ssl_key' needs ssl_cert"),
])
def test_a_bad_tls_option_is_a_config_error_naming_the_option(query, message):
    with pytest.raises(ConfigError, match="PET_API_DATABASE_URL .*: database URL: " + message) as raised:
        profile_config(database_url=f"mysql://u:{SECRET}@h/pets{query}")
    assert SECRET not in str(raised.value)


# ---- a server that only talks TLS


@dataclass
class TLSServer:
    server: PrivateMariaDB
    ca: Path  # signed the server's certificate
    rogue_ca: Path  # signed nothing of this server's
    client: Path  # a client certificate the CA signed, for the account pets_x509 (REQUIRE X509)
    client_key: Path
    database: str  # mysql://pets:SECRET@127.0.0.1:PORT/pet_api_tls, without options

    def url(self, query: str) -> str:
        return f"{self.database}?{query}"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
                 *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pem(path: Path, item: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    if isinstance(item, x509.Certificate):
        path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(item.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return path


def _make_certificates(folder: Path) -> dict[str, Path]:
    """ca, rogue_ca, server, server_key, client, client_key: a CA that signed the server's certificate (for
    127.0.0.1 only) and a client's, and another CA that signed nothing of theirs."""
    ca_key, rogue_key, server_key, client_key = _key(), _key(), _key(), _key()
    test_ca, server_name = "pet-api test CA", "pet-api test server"
    return {
        "ca": _write_pem(folder / "ca.pem", _certificate(test_ca, ca_key, test_ca, ca_key, ca=True)),
        "rogue_ca": _write_pem(folder / "rogue-ca.pem", _certificate("rogue CA", rogue_key, "rogue CA", rogue_key,
                                                                     ca=True)),
        "server": _write_pem(folder / "server.pem", _certificate(server_name, server_key, test_ca, ca_key, ca=False)),
        "server_key": _write_pem(folder / "server-key.pem", server_key),
        "client": _write_pem(folder / "client.pem", _certificate("pet-api", client_key, test_ca, ca_key, ca=False)),
        "client_key": _write_pem(folder / "client-key.pem", client_key),
    }


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A private MariaDB with a certificate of a throwaway CA that refuses connections without TLS; its
    pet_api_tls database migrated over TLS by the account pets (pets_x509 must also show a client certificate)."""
    if find_tool("mariadbd") is None:
        pytest.skip("mariadbd not installed (apt-get install mariadb-server)")
    folder = tmp_path_factory.mktemp("tls")
    pem = _make_certificates(folder)
    server = PrivateMariaDB(folder / "mariadb", extra_args=[f"--ssl-ca={pem['ca']}", f"--ssl-cert={pem['server']}",
                                                            f"--ssl-key={pem['server_key']}"])
    with server:
        plain = create_database(server.url, "pet_api_tls")  # the last plain connection this server accepts
        root = connect_server(server.url)
        try:
            with root.cursor() as cur:
                cur.execute("CREATE USER 'pets'@'%%' IDENTIFIED BY %s", (SECRET,))
                cur.execute("GRANT ALL ON pet_api_tls.* TO 'pets'@'%'")
                cur.execute("CREATE USER 'pets_x509'@'%%' IDENTIFIED BY %s REQUIRE X509", (SECRET,))
                cur.execute("GRANT SELECT ON pet_api_tls.* TO 'pets_x509'@'%'")
                cur.execute("SET GLOBAL require_secure_transport = ON")
        finally:
            root.close()
        database = plain.replace("root:@", f"pets:{quote(SECRET)}@")
        tls = TLSServer(server, pem["ca"], pem["rogue_ca"], pem["client"], pem["client_key"], database)
        run_async(migrate_database(tls.url(f"ssl=verify&ssl_ca={tls.ca}")))
        yield tls
    server.remove_datadir()


@pytest.fixture
def mysql_url(tls_server: TLSServer) -> str:
    """The app of the `app`/`api` fixtures on the TLS server, verifying its certificate against the test CA."""
    return tls_server.url(f"ssl=verify&ssl_ca={tls_server.ca}")


@pytest.mark.gen_test(timeout=30)
async def test_the_app_verifies_the_server_and_serves_over_tls(app, api):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token, name="Tls")
    response = await api.get(f"/v1/pets/{pet['id']}", token=token)
    assert response.status == 200 and response.body["data"]["name"] == "Tls", response.body
    cipher = await app.db.fetch_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    version = await app.db.fetch_one("SHOW SESSION STATUS LIKE 'Ssl_version'")
    assert cipher is not None and cipher[1], cipher
    assert version is not None and version[1] in ("TLSv1.2", "TLSv1.3"), version
    print(f"\nserved over {version[1]} with {cipher[1]}")


async def _start_failure(url: str) -> str:
    """Why the first connect of a URL failed, as `pet-api serve` and `migrate` print it (and it is a 503)."""
    with pytest.raises(ServiceUnavailable) as raised:
        await connect(profile_config(database_url=url))
    assert raised.value.status == 503
    line = why_unreachable(raised.value)
    assert SECRET not in line
    return line


@pytest.mark.gen_test(timeout=30)
async def test_ssl_required_encrypts_without_checking_the_certificate(tls_server):
    db = await connect(profile_config(database_url=tls_server.url("ssl=required")))
    try:
        cipher = await db.fetch_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cipher is not None and cipher[1], cipher
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_plain_connection_is_refused_by_the_server(tls_server):
    line = await _start_failure(tls_server.url("ssl=off"))
    assert line.endswith("or the server requires TLS: ?ssl=verify)"), line


@pytest.mark.gen_test(timeout=30)
async def test_a_certificate_another_ca_signed_fails_verification(tls_server):
    line = await _start_failure(tls_server.url(f"ssl=verify&ssl_ca={tls_server.rogue_ca}"))
    assert line.startswith("TLS: the server certificate did not verify"), line


@pytest.mark.gen_test(timeout=30)
async def test_the_system_ca_store_does_not_trust_a_private_ca(tls_server):
    line = await _start_failure(tls_server.url("ssl=verify"))
    assert line.startswith("TLS: the server certificate did not verify"), line


@pytest.mark.gen_test(timeout=30)
async def test_the_host_name_is_verified(tls_server):
    url = tls_server.url(f"ssl=verify&ssl_ca={tls_server.ca}").replace("@127.0.0.1:", "@localhost:")
    line = await _start_failure(url)  # localhost reaches the same server but is not in its certificate
    assert line.startswith("TLS: the server certificate did not verify") and "mismatch" in line, line


@pytest.mark.gen_test(timeout=30)
async def test_a_missing_ca_file_is_a_clear_start_error(tls_server, tmp_path):
    line = await _start_failure(tls_server.url(f"ssl=verify&ssl_ca={tmp_path}/nowhere.pem"))
    assert line == "TLS: cannot load the ssl_ca/ssl_cert/ssl_key files (No such file or directory)", line


@pytest.mark.gen_test(timeout=30)
async def test_a_server_without_tls_is_refused_not_used_in_plain_text(mysql_server_url):
    url = create_database(mysql_server_url, "pet_api_tls_plain")
    line = await _start_failure(url + "?ssl=required")
    assert line == "TLS: the database server does not offer TLS (the URL asks for ssl)", line


@pytest.mark.gen_test(timeout=30)
async def test_a_client_certificate_is_sent_when_the_account_requires_one(tls_server):
    verify = f"ssl=verify&ssl_ca={tls_server.ca}"
    x509_url = tls_server.database.replace("pets:", "pets_x509:")
    line = await _start_failure(f"{x509_url}?{verify}")
    assert line.startswith("access denied"), line
    db = await connect(profile_config(
        database_url=f"{x509_url}?{verify}&ssl_cert={tls_server.client}&ssl_key={tls_server.client_key}"))
    try:
        assert await db.fetch_one("SELECT CURRENT_USER()") == ("pets_x509@%",)
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_every_host_of_a_cluster_url_is_reached_over_tls(tls_server):
    live = f"127.0.0.1:{tls_server.server.port}"
    url = tls_server.url(f"ssl=verify&ssl_ca={tls_server.ca}").replace(f"@{live}/", f"@127.0.0.1:{free_port()},{live}/")
    db = await connect(profile_config(database_url=url))
    try:
        cipher = await db.fetch_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cipher is not None and cipher[1], cipher
        assert [(n.node, n.state, n.writer) for n in db.node_states()][1] == (live, "ready", True)
    finally:
        await db.close()

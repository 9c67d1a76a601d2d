"""Profiles, PET_API_* overrides, explicit overrides, and the one-line errors naming the key."""

from pathlib import Path

import orjson
import pydantic
import pytest

from server.config import CONFIG_DIR, Config, ConfigError, load_config
from server.db.url import parse_url
from tests.processes import one_line, run_main

PROD_DB = "mysql://pet_api:pw@db.internal:3306/pet_api"
GOOD_SECRET = "q8Vb3kLz0pXw7RtN2mYc5HsJ9dFg4AeU1iOo6"


def test_each_profile_loads_its_file():
    dev = load_config("dev", environ={})
    test = load_config("test", environ={})
    assert (dev.env, dev.debug, dev.database_url) == ("dev", True, "sqlite:///var/dev.sqlite3")
    assert dev.cors_allow_origins == ("*",)
    assert (test.env, test.debug, test.token_expiration, test.max_body_size) == ("test", False, 3600, 65536)
    assert test.plugins == ("core", "accounts", "pets", "records", "households", "reminders", "photos", "sync",
                            "metrics")


def test_environment_overrides_the_profile_and_flags_override_both():
    environ = {"PET_API_PORT": "9001", "PET_API_TOKEN_EXPIRATION": "60", "PET_API_DEBUG": "false",
               "PET_API_CORS_ALLOW_ORIGINS": "https://a.example, https://b.example",
               "PET_API_PLUGINS": '["core", "accounts"]', "PET_API_HOST": "0.0.0.0"}
    config = load_config("dev", environ=environ, overrides={"port": 9002, "host": None})
    assert config.port == 9002  # the command line wins over the environment
    assert config.host == "0.0.0.0"  # an absent flag (None) leaves the environment's value
    assert config.token_expiration == 60
    assert config.debug is False
    assert config.cors_allow_origins == ("https://a.example", "https://b.example")
    assert config.plugins == ("core", "accounts")


def test_secret_key_list_keeps_every_key_and_signs_with_the_last():
    config = load_config("dev", environ={"PET_API_SECRET_KEY": "old-key-0123456789abcdef,new-key-0123456789abcdef"})
    assert config.secret_key == ("old-key-0123456789abcdef", "new-key-0123456789abcdef")
    assert config.signing_keys[-1] == "new-key-0123456789abcdef"


def test_config_is_immutable():
    config = load_config("test", environ={})
    with pytest.raises(pydantic.ValidationError):
        config.port = 1  # type: ignore[misc]
    assert config.port == 8000


@pytest.mark.parametrize(("environ", "expected"), [
    ({"PET_API_PORT": "eighty"}, "config error: PET_API_PORT (port): "),
    ({"PET_API_PORT": "70000"}, "config error: PET_API_PORT (port): "),
    ({"PET_API_TOKEN_EXPIRATION": "0"}, "config error: PET_API_TOKEN_EXPIRATION (token_expiration): "),
    ({"PET_API_LOG_LEVEL": "LOUD"}, "config error: PET_API_LOG_LEVEL (log_level): "),
    ({"PET_API_DEBUG": "perhaps"}, "config error: PET_API_DEBUG (debug): "),
    ({"PET_API_SECRET_KEY": ""}, "config error: PET_API_SECRET_KEY (secret_key): missing"),
    ({"PET_API_DATABASE_URL": ""}, "config error: PET_API_DATABASE_URL (database_url): "),
])
def test_malformed_value_is_one_line_naming_the_key(environ, expected):
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ=environ)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize(("env", "name", "value", "fixed", "why"), [
    ("dev", "CORS_ALLOW_ORIGINS", '["https://app.example.com"', '["https://app.example.com"]',
     "unexpected end of data: line 1 column 27 (char 26)"),
    ("prod", "SECRET_KEY", f'["{GOOD_SECRET}", "{GOOD_SECRET[::-1]}"', f'["{GOOD_SECRET}", "{GOOD_SECRET[::-1]}"]',
     "unexpected end of data: line 1 column 82 (char 81)"),
    ("test", "PLUGINS", "[core, accounts]", '["core", "accounts"]',
     "unexpected character, expected a JSON value: line 1 column 2 (char 1)"),
])
def test_a_malformed_json_list_is_refused_not_split_on_its_commas(env, name, value, fixed, why):
    # It was split on its commas: an origin '["https://app.example.com"' no browser sends, prod keys with a bracket and
    # quotes in them that no other instance has (audit config F5). The line never shows the value.
    environ = {"PET_API_DATABASE_URL": PROD_DB, "PET_API_SECRET_KEY": GOOD_SECRET, f"PET_API_{name}": value}
    with pytest.raises(ConfigError) as caught:
        load_config(env, environ=environ)
    assert str(caught.value) == (f"config error: PET_API_{name} ({name.lower()}): starts with [ but is not a JSON list"
                                 f" ({why})")
    config = load_config(env, environ={**environ, f"PET_API_{name}": fixed})
    assert list(getattr(config, name.lower())) == orjson.loads(fixed)
    result = run_main(f"--env={env}", "routes", **environ)
    assert (result.returncode, one_line(result.stderr)) == (2, str(caught.value))
    assert GOOD_SECRET not in result.stderr


@pytest.mark.parametrize(("env", "pool"), [("dev", {"PET_API_DB_POOL_MIN": "6", "PET_API_DB_POOL_MAX": "2"}),
                                           ("prod", {"PET_API_DB_POOL_MAX": "1"})])  # prod's own minimum is 2
def test_a_pool_minimum_above_its_maximum_is_refused_naming_both(env, pool):
    # The pool opened db_pool_min connections whatever db_pool_max said: 6 held with a maximum of 2 (audit config F6).
    environ = {"PET_API_DATABASE_URL": PROD_DB, "PET_API_SECRET_KEY": GOOD_SECRET, **pool}
    low, high = (6, 2) if env == "dev" else (2, 1)
    with pytest.raises(ConfigError) as caught:
        load_config(env, environ=environ)
    assert str(caught.value) == (f"config error: PET_API_DB_POOL_MIN (db_pool_min): must not exceed db_pool_max "
                                 f"({low} > {high})")
    result = run_main(f"--env={env}", "routes", **environ)
    assert (result.returncode, one_line(result.stderr)) == (2, str(caught.value))
    same = load_config(env, environ={**environ, "PET_API_DB_POOL_MIN": str(high)})
    assert (same.db_pool_min, same.db_pool_max) == (high, high)


def test_an_empty_host_is_refused_rather_than_listening_on_every_interface():
    # PET_API_HOST= (an EnvironmentFile line left empty) reached tornado as "": every IPv4 and IPv6 address, a dev
    # server with debug traces exposed (audit config F7). Empty is a missing value, as PET_API_DATABASE_URL= is.
    reason = "missing (name the address to listen on: 127.0.0.1, or 0.0.0.0 for every IPv4 interface)"
    for host in ("", "  "):
        with pytest.raises(ConfigError) as caught:
            load_config("dev", environ={"PET_API_HOST": host})
        assert str(caught.value) == f"config error: PET_API_HOST (host): {reason}"
    result = run_main("--env=dev", "routes", PET_API_HOST="")
    assert (result.returncode, one_line(result.stderr)) == (2, f"config error: PET_API_HOST (host): {reason}")
    with pytest.raises(ConfigError) as caught:
        load_config("dev", environ={}, overrides={"host": ""}, options=["host"])
    assert str(caught.value) == f"config error: --host: {reason}"
    assert load_config("dev", environ={"PET_API_HOST": "0.0.0.0"}).host == "0.0.0.0"


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"port": 70000}, "config error: --port: Input should be less than or equal to 65535"),
    ({"workers": -1}, "config error: --workers: Input should be greater than or equal to 0"),
])
def test_a_bad_command_line_option_is_named_as_the_option_not_as_its_variable(overrides, expected):
    with pytest.raises(ConfigError) as caught:
        load_config("test", overrides=overrides, environ={"PET_API_PORT": "9001"}, options=list(overrides))
    assert str(caught.value) == expected
    with pytest.raises(ConfigError) as caught:  # an override a program passes is named by its variable
        load_config("test", overrides=overrides, environ={})
    assert str(caught.value).startswith("config error: PET_API_")


@pytest.mark.parametrize(("secret", "reason"), [
    (None, "missing"),
    ("", "missing"),
    ("short-but-random-Xy7", "at least 32"),
    ("prod-secret-change-me-0123456789abcdefghij", "placeholder"),
    ("a" * 40, "at least 32"),
])
def test_prod_refuses_a_missing_short_or_placeholder_secret(secret, reason):
    environ = {"PET_API_DATABASE_URL": PROD_DB} if secret is None else {"PET_API_SECRET_KEY": secret,
                                                                        "PET_API_DATABASE_URL": PROD_DB}
    with pytest.raises(ConfigError) as caught:
        load_config("prod", environ=environ)
    message = str(caught.value)
    assert message.startswith("config error: PET_API_SECRET_KEY (secret_key): ")
    assert reason in message
    assert "\n" not in message


def test_prod_refuses_debug():
    with pytest.raises(ConfigError) as caught:
        load_config("prod", environ={"PET_API_SECRET_KEY": GOOD_SECRET, "PET_API_DEBUG": "1",
                                     "PET_API_DATABASE_URL": PROD_DB})
    assert str(caught.value) == "config error: PET_API_DEBUG (debug): must be off in prod"


def test_prod_checks_every_key_of_a_rotation_list():
    with pytest.raises(ConfigError) as caught:
        load_config("prod", environ={"PET_API_SECRET_KEY": f"{GOOD_SECRET},changeme", "PET_API_DATABASE_URL": PROD_DB})
    assert "PET_API_SECRET_KEY" in str(caught.value)
    config = load_config("prod", environ={"PET_API_SECRET_KEY": f"{GOOD_SECRET},{GOOD_SECRET[::-1]}",
                                          "PET_API_DATABASE_URL": PROD_DB})
    assert config.signing_keys == [GOOD_SECRET, GOOD_SECRET[::-1]]
    assert config.debug is False


def test_prod_profile_holds_no_secret_and_no_database():
    text = (CONFIG_DIR / "prod.yaml").read_text()
    assert "secret_key" not in text
    with pytest.raises(ConfigError, match="PET_API_SECRET_KEY"):
        load_config("prod", environ={"PET_API_DATABASE_URL": PROD_DB})
    with pytest.raises(ConfigError) as caught:  # no guessed default: the operator names the database
        load_config("prod", environ={"PET_API_SECRET_KEY": GOOD_SECRET})
    assert str(caught.value) == "config error: PET_API_DATABASE_URL (database_url): missing"


def test_unknown_key_in_a_profile_is_named(tmp_path: Path):
    (tmp_path / "test.yaml").write_text("secret_key: abc\ndatabase_url: sqlite:///x\ntoken_expiry: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={}, config_dir=tmp_path)
    assert str(caught.value).startswith("config error: PET_API_TOKEN_EXPIRY (token_expiry): ")


def test_missing_or_broken_profile_file_is_one_line(tmp_path: Path):
    with pytest.raises(ConfigError) as missing:
        load_config("test", environ={}, config_dir=tmp_path)
    assert str(missing.value).startswith("config: no profile ")
    (tmp_path / "test.yaml").write_text("port: [1, 2\n")
    with pytest.raises(ConfigError) as broken:
        load_config("test", environ={}, config_dir=tmp_path)
    assert "is not valid YAML" in str(broken.value)
    assert "\n" not in str(broken.value)


def test_missing_required_key_is_named(tmp_path: Path):
    (tmp_path / "test.yaml").write_text("secret_key: abc\n")
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={}, config_dir=tmp_path)
    assert str(caught.value) == "config error: PET_API_DATABASE_URL (database_url): missing"


def test_every_documented_key_has_a_field():
    documented = {"debug", "host", "port", "workers", "secret_key", "database_url", "token_expiration", "log_level",
                  "sql_echo", "cors_allow_origins", "rbac_url", "max_body_size", "plugins"}
    assert documented <= set(Config.model_fields)


@pytest.mark.parametrize(("plugins", "says"), [
    ("core,nope", "plugin 'nope': unknown (no entry point 'nope' in pet_api.plugins, no module server.plugins.nope)"),
    ("core,tests.no_such_module", "plugin 'tests.no_such_module': no module 'tests.no_such_module'"),
    ('["core", "..x"]', "plugin '..x': cannot import ..x: TypeError: "),
])
def test_a_plugin_that_cannot_be_imported_is_a_config_error(plugins, says):
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={"PET_API_PLUGINS": plugins})
    assert str(caught.value).startswith("config error: PET_API_PLUGINS (plugins): " + says), caught.value


def test_plugins_accept_any_importable_dotted_path():
    config = load_config("test", environ={"PET_API_PLUGINS": "core,tests.handlers.boom_plugin"})
    assert config.plugins == ("core", "tests.handlers.boom_plugin")


@pytest.mark.parametrize(("url", "says"), [
    ("postgres://u@h/d", "unsupported database URL scheme 'postgres'"),
    ("mysql://root@127.0.0.1:3306", "must name the database"),
    ("mysql://root@127.0.0.1:port/db", "bad port for host '127.0.0.1': not a number from 1 to 65535"),
])
def test_a_database_url_that_cannot_work_is_named_at_start(url, says):
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={"PET_API_DATABASE_URL": url})
    assert str(caught.value).startswith("config error: PET_API_DATABASE_URL (database_url): ")
    assert says in str(caught.value)


def test_rbac_url_must_be_http_and_empty_means_none():
    with pytest.raises(ConfigError, match=r"PET_API_RBAC_URL \(rbac_url\): must be an http"):
        load_config("test", environ={"PET_API_RBAC_URL": "roles.example/map"})
    assert load_config("test", environ={"PET_API_RBAC_URL": ""}).rbac_url is None
    assert load_config("test", environ={"PET_API_RBAC_URL": "https://rbac.example/roles"}).rbac_url == \
        "https://rbac.example/roles"


@pytest.mark.parametrize("url", [
    "mysql://pet_api:Sup3rS3cret/Tail@127.0.0.1:3306/pet_api",  # '/' ends the authority: 'Sup3rS3cret' was a port
    "mysql://pet_api:Sup3r#S3cret@127.0.0.1:3306/pet_api",
    "mysql://pet_api:Sup3r?S3cret@127.0.0.1:3306/pet_api",
    "mysql://pet_api:12345/S3cret@127.0.0.1:3306/pet_api",  # a valid port: it used to connect to host 'pet_api'
    "mysql://pet_api:p@S3cret/Tail@127.0.0.1:3306/pet_api",
])
def test_a_url_cut_short_by_its_password_is_refused_without_showing_it(url):
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={"PET_API_DATABASE_URL": url})
    assert str(caught.value) == (
        "config error: PET_API_DATABASE_URL (database_url): database URL: an '@' follows the host: a '/', '#' or '?'"
        " cut the user and password part short (a password with / # ? or @ must be percent-encoded: %2F %23 %3F %40)")


def test_a_bad_port_error_never_shows_the_port_text():
    """Without any '@' a password cut short is taken for a port: only the host part (the user name) is shown."""
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={"PET_API_DATABASE_URL": "mysql://pet_api:Sup3rS3cret/pet_api"})
    assert "Sup3rS3cret" not in str(caught.value)
    assert "bad port for host 'pet_api': not a number from 1 to 65535 (a password with / # ? or @ must be" \
        in str(caught.value)


def test_a_percent_encoded_password_and_an_encoded_at_in_an_option_are_read():
    config = load_config("test", environ={"PET_API_DATABASE_URL":
                                          "mysql://pet_api:Sup3r%2FS3%23c%3Fr%40t@db:3307/pet_api?ssl=verify&ssl_ca=/a%40b"})
    url = parse_url(config.database_url)
    assert (url.user, url.password, url.host, url.port, url.database, url.tls.ca) == (
        "pet_api", "Sup3r/S3#c?r@t", "db", 3307, "pet_api", "/a@b")


def test_a_byte_that_is_not_utf8_in_the_profile_or_the_env_file_is_one_line_naming_its_line(tmp_path: Path):
    from server.config import read_env_file

    (tmp_path / "test.yaml").write_bytes(b"secret_key: abc\ndatabase_url: sqlite:///x\nroles: {caf\xe9: []}\n")
    with pytest.raises(ConfigError) as profile:
        load_config("test", environ={}, config_dir=tmp_path)
    assert str(profile.value) == f"config: {tmp_path / 'test.yaml'} line 3: not UTF-8 text"
    (tmp_path / "env").write_bytes(b"PET_API_PORT=1\n# comment\nPET_API_SECRET_KEY=s3cr\xe9t-value\n")
    with pytest.raises(ConfigError) as env_file:
        read_env_file(tmp_path / "env")
    assert str(env_file.value) == f"config: {tmp_path / 'env'} line 3: not UTF-8 text"


@pytest.mark.parametrize(("text", "expected"), [
    # unquoted: a backslash takes the next character as it is; backslash-newline joins the lines
    ("A=mysql://u:pa\\ss@host/x\n", "mysql://u:pass@host/x"),
    ("A=a\\\\b\n", "a\\b"),
    ("A=a\\#b\\'c\n", "a#b'c"),
    ("A=one\\\ntwo\n", "onetwo"),
    ("A=  spaced  value \t\n", "spaced  value"),  # blanks inside kept, around dropped
    ("A=kept\\ \n", "kept "),  # an escaped trailing blank stays
    ("A=x \"y\" 'z'\n", "x \"y\" 'z'"),  # quotes inside an unquoted value are characters
    ("A=a # not a comment\n", "a # not a comment"),
    # single quotes: everything as it is, newlines included
    ("A='pa\\ss $x \"q\"'\n", "pa\\ss $x \"q\""),
    ("A='multi\nline'\n", "multi\nline"),
    # double quotes: only \" \\ \` \$ are escapes, another backslash stays; backslash-newline joins
    ('A="q\\" b\\\\ t\\` d\\$ n\\n s\\s"\n', 'q" b\\ t` d$ n\\n s\\s'),
    ('A="line1\\\nline2"\n', "line1line2"),
    ('A="multi\nline"\n', "multi\nline"),
    ('A=  "  padded  "  \n', "  padded  "),
    # pieces that touch, or are separated by blanks after a quote, make one value
    ("A=\"a\"'b'c\n", "abc"),
    ('A="a" "b"\n', "ab"),
    # empty values, an unterminated quote at the end of the file, CRLF lines, blanks around the key
    ("A=\n", ""),
    ('A=""\n', ""),
    ('A="open to the end', "open to the end"),
    ("A=crlf\r\nB=2\r\n", "crlf"),
    ("  A  =  v\n", "v"),
    ("A=first\nA=second\n", "second"),
    # a comment ends at its line's end, even after a backslash (systemd 254 and later)
    ("# comment \\\nA=after\n; another\n", "after"),
])
def test_the_env_file_reads_each_value_as_systemd_does(tmp_path: Path, text, expected):
    from server.config import read_env_file

    (tmp_path / "env").write_text(text, newline="")
    assert read_env_file(tmp_path / "env")["A"] == expected


def test_plugin_settings_no_plugin_has_are_reported_a_disabled_plugins_own_are_not(tmp_path: Path):
    from server.config import unknown_variables

    (tmp_path / "test.yaml").write_text(
        "secret_key: abc\ndatabase_url: sqlite:///x\nplugins: [core, pets]\nplugin_settings:\n"
        "  acounts: {link_base: x}\n"  # no such plugin
        "  accounts: {mail_transport: smtp, mail_transprt: smtp}\n"  # disabled: its key is fine, the misspelt one not
        "  sync: {sync_retention_days: 3}\n")
    environ = {"PET_API_ACOUNTS__MAIL_TRANSPORT": "smtp", "PET_API_SYNC__EVENTS_POLL_SECONDS": "1",
               "PET_API_SYNC__EVENT_POLL_SECONDS": "1", "PET_API_ENV": "prod", "PET_API_PORT": "1"}
    config = load_config("test", environ=environ, config_dir=tmp_path)
    assert unknown_variables(environ, config) == [
        "PET_API_ENV", "PET_API_ACOUNTS__MAIL_TRANSPORT", "PET_API_SYNC__EVENT_POLL_SECONDS",
        "plugin_settings.accounts.mail_transprt", "plugin_settings.acounts"]

"""pet-api command line: serve (default), migrate, create-admin, routes, plugins."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.config import Config, ConfigError, load_config, read_env_file, unknown_variables

if TYPE_CHECKING:
    from server.db import Database

# Exit codes (README "Command line"): 2 configuration; the others are server.serve.start_failure's.


def _options(*, sub: bool) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The shared options; a subcommand's copies default to SUPPRESS so they never undo `--env=prod migrate`."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if sub else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", choices=("dev", "test", "prod"), default=default("dev"),
                        help="profile: config/<env>.yaml")
    common.add_argument("--env-file", type=Path, default=default(None), metavar="FILE",
                        help="read PET_API_* variables from a systemd EnvironmentFile (e.g. /etc/pet-api/env), "
                             "as the unit does; they win over the shell's")
    serve_opts = argparse.ArgumentParser(add_help=False)
    serve_opts.add_argument("--host", default=default(None))
    serve_opts.add_argument("--port", type=int, default=default(None))
    serve_opts.add_argument("--workers", type=int, default=default(None), help="0 = one per CPU")
    return common, serve_opts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__, parents=list(_options(sub=False)))
    common, serve_opts = _options(sub=True)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", parents=[common, serve_opts], help="run the HTTP server (default)")
    sub.add_parser("migrate", parents=[common], help="apply pending database migrations")
    admin = sub.add_parser("create-admin", parents=[common],
                           help="create or promote an admin (password: PET_API_ADMIN_PASSWORD or a prompt)")
    admin.add_argument("--email", required=True)
    admin.add_argument("--nickname", default="admin")
    sub.add_parser("routes", parents=[common], help="print the route table and the enabled plugins' scopes")
    sub.add_parser("plugins", parents=[common],
                   help="list every discoverable plugin: source, enabled, routes, scopes, settings, migrations")
    return parser


async def _migrate(config: Config) -> int:
    from server.app import plugin_hook
    from server.db import connect
    from server.db.migrations import migrate, migration_step
    from server.plugins import PluginError
    from server.registry import load_plugins

    plugins = load_plugins(config)
    # a migration may rewrite a big table: the request path's statement timeout does not apply
    db = await connect(config.model_copy(update={"db_statement_timeout": 3600.0}))
    try:
        applied = await migrate(db, plugins.migration_sources(),
                                on_wait=lambda line: print(f"migrate: {line}", file=sys.stderr, flush=True))
        for m in applied:
            print(f"recorded {m.label} (its tables were already there)" if m.adopted else f"applied {m.label}")
        if not applied:
            print("database is up to date")
        for found in plugins.in_dependency_order():  # the backfills, once the schema is whole
            if found.plugin.after_migrate is not None:
                with plugin_hook(found.name, "after_migrate"), migration_step(f"{found.name}'s after_migrate backfill"):
                    lines: object = await found.plugin.after_migrate(db)
                if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
                    raise PluginError(f"plugin {found.name!r}: after_migrate returned {type(lines).__name__}, "
                                      f"not a list of lines (str)")
                for line in lines:
                    print(f"{found.name}: {line}")
    finally:
        await db.close()
    return 0


CANCELLED = 130  # the shell's status for a command stopped by Ctrl-C


def _admin_password(environ: Mapping[str, str]) -> str | None:
    """PET_API_ADMIN_PASSWORD, else asked twice on the terminal; None when there is neither. Two different answers
    stop the command like any refused field (exit 2), Ctrl-D or Ctrl-C at the prompt cancel it (exit 130), each
    with one line: nothing is opened yet."""
    password = environ.get("PET_API_ADMIN_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        return None
    # asyncio.run's SIGINT handler only cancels the task, which the blocking prompt never hands back to
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        first = getpass.getpass("admin password: ")
        again = getpass.getpass("admin password again: ")
    except (EOFError, KeyboardInterrupt):
        print("\ncreate-admin: cancelled" if sys.stderr.isatty() else "create-admin: cancelled", file=sys.stderr)
        raise SystemExit(CANCELLED) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if again != first:
        print("create-admin: password: the two passwords do not match", file=sys.stderr)
        raise SystemExit(2)
    return first


async def _create_admin(config: Config, email: str, nickname: str, environ: Mapping[str, str]) -> int:
    from server.db import connect
    from server.errors import InvalidParameter
    from server.plugins.accounts.models import UserCreate
    from server.plugins.accounts.services.accounts import Accounts
    from server.plugins.accounts.services.credentials import create_or_promote_admin
    from server.validation import validate

    password = _admin_password(environ)
    if password is None:
        print("create-admin: set PET_API_ADMIN_PASSWORD or run it in a terminal to be asked", file=sys.stderr)
        return 2
    try:
        account = validate(UserCreate, {"email": email, "password": password, "nickname": nickname})
    except InvalidParameter as exc:
        return _refused(exc)
    accounts = Accounts.from_config(config)
    db = await connect(config)
    try:
        await _require_current(db, config)  # else its tables may not be there yet: "run migrate" (exit 3)
        user, created = await create_or_promote_admin(db, accounts, email=account.email, nickname=account.nickname,
                                                      password=password)
    except InvalidParameter as exc:
        return _refused(exc)
    finally:
        await db.close()
        accounts.passwords.close()
    if created:
        print(f"created admin {user.email} (id {user.id})")
    else:
        print(f"promoted {user.email} (id {user.id}) to admin")
    return 0


def _refused(exc: Any) -> int:
    """create-admin's exit status for a refused field, after one line per field."""
    for error in exc.errors or []:
        print(f"create-admin: {error['field']}: {error['message']}", file=sys.stderr)
    return 2


async def _require_current(db: Database, config: Config) -> None:
    """PendingMigrations (naming them and `migrate`) unless the schema has every migration of the core and of the
    enabled plugins: serve's start check, and create-admin's."""
    from server.app import require_current
    from server.registry import load_plugins

    await require_current(db, config, load_plugins(config).migration_sources())


async def _check_schema(config: Config) -> None:
    """Before any worker forks: a database that cannot be reached, or a schema that is behind (prod), stops the start
    once, with one line, not once per worker (with auto_migrate, dev, each worker's start applies the migrations)."""
    from server.db import connect

    db = await connect(config)
    try:
        if not config.auto_migrate:
            await _require_current(db, config)
    finally:
        await db.close()


def _scopes_column(fn: object) -> str:
    """'-' for a public route, '(any token)' when a token without particular scopes is enough."""
    if not hasattr(fn, "required_scopes"):
        return "-"
    return " ".join(sorted(fn.required_scopes)) or "(any token)"


def _table(rows: list[tuple[str, ...]]) -> None:
    """Print rows in columns (the last one unpadded)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


def _routes(config: Config) -> int:
    from server import make_app
    from server.plugins import PluginError, template

    try:
        app = make_app(config)
    except PluginError as exc:  # a plugin's setup raised
        print(f"routes: {exc}", file=sys.stderr)
        return 2
    _table([("METHOD", "PATH", "PLUGIN", "SCOPES"),
            *((m.upper(), template(path), plugin, _scopes_column(fn)) for path, m, fn, plugin in app.route_table())])
    print()
    _table([("SCOPE", "PLUGIN", "DESCRIPTION"),
            *((s.name, s.plugin, s.description) for s in app.plugin_set.scopes.values())])
    return 0


async def _migration_state(config: Config, found: list[Any]) -> dict[str, str]:
    """Per plugin: 'n applied, m pending (...)', or why the database could not say (unreachable, and why; or the
    statement it refused)."""
    from server.db import connect
    from server.db.migrations import CORE_SOURCE, STATEMENT_ERRORS, applied, available, server_error
    from server.db.mysql import why_unreachable
    from server.errors import ServiceUnavailable

    sources = [CORE_SOURCE, *((f.name, f.migrations) for f in found if f.migrations is not None)]
    db = None
    try:
        db = await connect(config)
        done = await applied(db)
        state = {}
        for plugin, folder in sources:
            files = available(db.dialect.name, folder, plugin)
            todo = [f"{m.version:04d}_{m.name}" for m in files if (plugin, m.version) not in done]
            state[plugin] = f"{len(files) - len(todo)} applied, {len(todo)} pending" + (
                f" ({', '.join(todo)})" if todo else "")
        return state
    except ServiceUnavailable as exc:
        return {name: f"database unreachable: {why_unreachable(exc)}" for name, _ in sources}
    except STATEMENT_ERRORS as exc:
        return {name: f"the database refused a statement: {server_error(exc)}" for name, _ in sources}
    finally:
        if db is not None:
            await db.close()


def _plugins(config: Config) -> int:
    from server.plugins import discoverable, operations
    from server.registry import settings_variable

    found, broken = discoverable(config.plugins)
    state = asyncio.run(_migration_state(config, found))
    for item in found:
        plugin = item.plugin
        enabled = item.name in config.plugins or item.module in config.plugins
        print(f"{item.name}  [{'enabled' if enabled else 'disabled'}]  {item.origin}")
        print(f"  version:    {item.version or '-'}")
        routes = [f"{m.upper()} {path}" for path, m, _ in operations(plugin)]
        print(f"  routes:     {', '.join(routes) or '-'}")
        print(f"  requires:   {', '.join(plugin.requires) or '-'}")
        print(f"  scopes:     {', '.join(plugin.scopes) or '-'}")
        if plugin.settings is None:
            print("  settings:   -")
        else:
            print("  settings:")
            for key, field in plugin.settings.model_fields.items():
                default = "(required)" if field.is_required() else f"= {field.get_default(call_default_factory=True)!r}"
                print(f"    {key} {default}  [{settings_variable(item.name, key)}]")
        codes = plugin.error_codes
        print(f"  errors:     {', '.join(str(e.code) for e in plugin.errors) or '-'}"
              + (f" (reserves {codes.start}-{codes.stop - 1})" if codes else ""))
        hook = plugin.after_migrate
        print(f"  after migrate: {f'{hook.__module__}:{hook.__qualname__}' if hook else '-'}")
        print(f"  migrations: {state.get(item.name, '-')}")
    for name, reason in broken.items():
        print(f"{name}  [broken]  {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: getattr(args, k, None) for k in ("host", "port", "workers")}
    environ = dict(os.environ)  # read, never written: the file's variables join this copy
    try:
        if getattr(args, "env_file", None) is not None:
            environ.update(read_env_file(args.env_file))
        config = load_config(args.env, overrides=overrides, environ=environ,
                             options=[k for k, v in overrides.items() if v is not None])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for name in unknown_variables(environ, config):
        print(f"pet-api: warning: {name} is not a setting and is ignored", file=sys.stderr)
    command = args.command or "serve"
    if command in ("migrate", "create-admin"):
        from server.serve import START_FAILURES, start_failure

        try:
            if command == "migrate":
                return asyncio.run(_migrate(config))
            return asyncio.run(_create_admin(config, args.email, args.nickname, environ))
        except START_FAILURES as exc:  # the statements refused are create-admin's writes or a migration's
            return start_failure(exc, command, during="", database_url=config.database_url)
    if command == "routes":
        return _routes(config)
    if command == "plugins":
        return _plugins(config)
    from server.logs import configure_logging
    from server.serve import START_FAILURES, serve, start_failure

    configure_logging(config.log_level)
    try:
        asyncio.run(_check_schema(config))  # forked workers would each fail and be restarted
    except START_FAILURES as exc:
        return start_failure(exc, database_url=config.database_url)
    # 0 after a graceful stop (SIGTERM/SIGINT); a worker's start-up failure code otherwise
    return serve(config, os.environ)


if __name__ == "__main__":
    sys.exit(main())

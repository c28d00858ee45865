"""The ``suimeet`` command: serve, migrate, demo, create-user, set-password, tokens and keys."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from rooms.accounts import SCOPES, Accounts
from rooms.agent import cli as terminal_cli
from rooms.db import Database
from rooms.demo import load_demo
from rooms.directory import Directory
from rooms.errors import DirectoryError
from rooms.models import Role
from scheduling.demo import load_meetings_demo
from web.app import create_app
from web.migrate import migrate
from web.settings import Settings, load_settings

log = logging.getLogger("suimeet")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    settings = load_settings(args.config, **overrides)
    logging.getLogger().setLevel(settings.log_level.upper())
    return settings


async def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[int]]) -> int:
    db = Database(settings.effective_database_url)
    try:
        return await fn(db)
    finally:
        await db.close()


def _print_demo_accounts(accounts: Sequence[tuple[str, str, str]]) -> None:
    print("Demo accounts (shown once; keep them):")
    for email, role, password in accounts:
        print(f"  {role:12} {email:40} password: {password}")


async def _demo(settings: Settings, password: str | None) -> int:
    await migrate(settings.effective_database_url)

    async def run(db: Database) -> int:
        result = await load_demo(db, password=password)
        if not result.loaded:
            print("Demo data is already loaded (the directory is not empty); nothing changed.")
            print("Set a password with: suimeet set-password admin@demo.suimeet.example")
            return 0
        print("Loaded demo data:", ", ".join(f"{v} {k}" for k, v in result.counts.items()))
        year = await load_meetings_demo(db, tz=settings.timezone)
        print(f"Loaded a past year of {year.meetings} meetings, {year.presences} presences.")
        _print_demo_accounts(result.accounts)
        return 0

    return await _with_db(settings, run)


def _use_uvloop() -> None:
    """Serve on uvloop: the SFU forwards a packet for ~30 µs of CPU on it, against ~50 µs
    and lost frames on asyncio's loop in the 8-party benchmark (media/README.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep running without it
        log.warning("uvloop is not installed: serving on asyncio's event loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    asyncio.run(migrate(settings.effective_database_url))
    if args.demo:
        asyncio.run(_demo(settings, args.demo_password))
    app = create_app(settings)
    print(f"SuiMeet on {settings.base_url}  (API docs: {settings.base_url}/api/docs)", flush=True)
    _use_uvloop()
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log_format='%a "%r" %s %b %Tfs',
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    asyncio.run(migrate(settings.effective_database_url, args.revision))
    print(f"Database is at revision {args.revision}.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(_settings(args), args.password))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("the passwords differ")
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = _read_password(args)

    async def run(db: Database) -> int:
        account = await Accounts(db).create_account(
            args.email, password, Role(args.role), name=args.name, unit_id=args.unit_id
        )
        print(f"Created account {account.id} for {account.email} with role {account.role}.")
        return 0

    asyncio.run(migrate(settings.effective_database_url))
    return asyncio.run(_with_db(settings, run))


def cmd_set_password(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = _read_password(args)

    async def run(db: Database) -> int:
        await Accounts(db).set_password(args.email, password)
        print(f"Password of {args.email} changed; its sessions and tokens are revoked.")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_rotate_terminal_token(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run(db: Database) -> int:
        issued = await Directory(db).rotate_terminal_token(args.terminal_id)
        print(
            f"New token of terminal {issued.terminal.id} ({issued.terminal.name}); "
            "the old one no longer works. Shown once:"
        )
        print(issued.token)
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_create_api_key(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run(db: Database) -> int:
        issued = await Accounts(db).create_key(args.name, args.scope, created_by=None)
        print(f"API key {issued.key.id} ({', '.join(issued.key.scopes)}). Shown once:")
        print(issued.token)
        return 0

    return asyncio.run(_with_db(settings, run))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="suimeet", description="SuiMeet: municipal video conferencing and meeting scheduling."
    )
    top.add_argument("--config", help="a TOML settings file (also SUIMEET_CONFIG)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="apply migrations and run the server")
    p.add_argument(
        "--demo",
        action="store_true",
        help="load demo data first if the directory is empty, and print the demo accounts",
    )
    p.add_argument("--demo-password", help="password of the demo accounts (default: random)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8080)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.add_argument("--revision", default="heads", help="target revision (default: the latest)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("demo", help="load the demo city government into an empty database")
    p.add_argument("--password", help="password of the demo accounts (default: random)")
    p.set_defaults(func=cmd_demo)

    for name, func, help_ in (
        ("create-user", cmd_create_user, "create a staff account"),
        ("set-password", cmd_set_password, "set an account's password"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("email")
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input instead of prompting",
        )
        if name == "create-user":
            p.add_argument("--role", required=True, choices=[r.value for r in Role])
            p.add_argument(
                "--name", help="the person's name, if the email is not in the directory yet"
            )
            p.add_argument("--unit-id", type=int, help="the person's unit, likewise")
        p.set_defaults(func=func)

    p = sub.add_parser("rotate-terminal-token", help="issue a new token for a terminal")
    p.add_argument("terminal_id", type=int)
    p.set_defaults(func=cmd_rotate_terminal_token)

    p = sub.add_parser("create-api-key", help="create a scoped key for the OA integration")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--scope", action="append", required=True, choices=SCOPES, help="repeat for several scopes"
    )
    p.set_defaults(func=cmd_create_api_key)

    p = sub.add_parser("terminal", help="run a room terminal's agent (joins its meetings)")
    terminal_cli.add_arguments(p)
    p.set_defaults(func=terminal_cli.run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings_level = "INFO"
    logging.basicConfig(
        level=settings_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result: int = args.func(args)
    except DirectoryError as exc:
        print(f"error: {exc.message} {exc.fields or ''}".rstrip(), file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())

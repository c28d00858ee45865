"""Credentials use cases: staff accounts, their tokens, integration keys, terminal tokens.

Every resolve_* call takes a presented secret and answers with the row it opens, or None:
callers cannot tell an unknown token from a wrong, expired or revoked one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select

from rooms.credentials import hash_password, mint_token, parse_token, token_matches, verify_password
from rooms.db import Database, utcnow
from rooms.errors import AuthenticationFailed, Conflict, Invalid, NotFound
from rooms.models import Account, ApiKey, AuthToken, Person, Role, Terminal

MIN_PASSWORD_LENGTH = 10

# Scopes an integration key can hold.
SCOPES = (
    "directory:read",
    "itip:reply",  # the mail gateway posts attendees' calendar replies
    "meetings:read",
    "meetings:write",
    "metrics:read",
)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    expires_at_iso: str


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    token: str  # shown once


class Accounts:
    """Accounts and credentials over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_account(
        self,
        email: str,
        password: str,
        role: Role,
        *,
        name: str | None = None,
        unit_id: int | None = None,
    ) -> Account:
        """An account for the person with this email (the person is created if needed)."""
        email = email.strip().lower()
        if len(password) < MIN_PASSWORD_LENGTH:
            raise Invalid(
                "password too short",
                fields={"password": f"at least {MIN_PASSWORD_LENGTH} characters"},
            )
        async with self.db.write() as session:
            person = await session.scalar(select(Person).where(func.lower(Person.email) == email))
            if person is None:
                if unit_id is None or name is None:
                    raise Invalid(
                        "no person has this email; give a name and a unit to create one",
                        fields={"email": "unknown person"},
                    )
                person = Person(name=name, email=email, unit_id=unit_id)
                session.add(person)
                await session.flush()
            if await session.scalar(select(Account).where(Account.person_id == person.id)):
                raise Conflict(f"{email} already has an account")
            account = Account(
                person_id=person.id, email=email, password_hash=hash_password(password), role=role
            )
            session.add(account)
            await session.flush()
            return account

    async def set_password(self, email: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise Invalid(
                "password too short",
                fields={"password": f"at least {MIN_PASSWORD_LENGTH} characters"},
            )
        async with self.db.write() as session:
            account = await session.scalar(select(Account).where(Account.email == email.lower()))
            if account is None:
                raise NotFound(f"no account for {email}")
            account.password_hash = hash_password(password)
            await session.execute(delete(AuthToken).where(AuthToken.account_id == account.id))

    async def login(
        self, email: str, password: str, *, kind: str, lifetime: timedelta
    ) -> tuple[Account, IssuedToken]:
        """Check a password and issue a token of ``kind`` ("api" or "session")."""
        async with self.db.read() as session:
            account = await session.scalar(
                select(Account).where(Account.email == email.strip().lower())
            )
        ok = verify_password(password, account.password_hash if account else None)
        if account is None or not ok or not account.active:
            raise AuthenticationFailed("wrong email or password")
        new = mint_token("sms")
        expires = utcnow() + lifetime
        async with self.db.write() as session:
            session.add(
                AuthToken(
                    account_id=account.id,
                    kind=kind,
                    token_prefix=new.prefix,
                    token_hash=new.hash,
                    expires_at=expires,
                )
            )
        return account, IssuedToken(new.token, expires.isoformat())

    async def logout(self, token: str) -> None:
        parsed = parse_token(token)
        if parsed is None:
            return
        async with self.db.write() as session:
            await session.execute(delete(AuthToken).where(AuthToken.token_prefix == parsed[1]))

    async def resolve_staff(self, token: str) -> tuple[Account, AuthToken] | None:
        parsed = parse_token(token)
        if parsed is None or parsed[0] != "sms":
            return None
        async with self.db.read() as session:
            row = await session.scalar(select(AuthToken).where(AuthToken.token_prefix == parsed[1]))
            if row is None or not token_matches(token, row.token_hash):
                return None
            if row.expires_at <= utcnow():
                return None
            account = await session.get(Account, row.account_id)
            if account is None or not account.active:
                return None
            return account, row

    async def resolve_key(self, token: str) -> ApiKey | None:
        parsed = parse_token(token)
        if parsed is None or parsed[0] != "smk":
            return None
        async with self.db.read() as session:
            key = await session.scalar(select(ApiKey).where(ApiKey.token_prefix == parsed[1]))
        if key is None or key.revoked_at is not None or not token_matches(token, key.token_hash):
            return None
        return key

    async def resolve_terminal(self, token: str) -> Terminal | None:
        parsed = parse_token(token)
        if parsed is None or parsed[0] != "smr":
            return None
        async with self.db.read() as session:
            terminal = await session.scalar(
                select(Terminal).where(Terminal.token_prefix == parsed[1])
            )
        if (
            terminal is None
            or terminal.revoked_at is not None
            or not token_matches(token, terminal.token_hash)
        ):
            return None
        return terminal

    async def create_key(
        self, name: str, scopes: Sequence[str], created_by: int | None
    ) -> IssuedKey:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise Invalid("unknown scopes", fields={"scopes": ", ".join(unknown)})
        new = mint_token("smk")
        async with self.db.write() as session:
            key = ApiKey(
                name=name,
                scopes=sorted(set(scopes)),
                token_prefix=new.prefix,
                token_hash=new.hash,
                created_by=created_by,
            )
            session.add(key)
            await session.flush()
            return IssuedKey(key, new.token)

    async def list_keys(self) -> Sequence[ApiKey]:
        async with self.db.read() as session:
            return (await session.scalars(select(ApiKey).order_by(ApiKey.id))).all()

    async def revoke_key(self, key_id: int) -> ApiKey:
        async with self.db.write() as session:
            key = await session.get(ApiKey, key_id)
            if key is None:
                raise NotFound(f"API key {key_id} does not exist")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
            return key

    async def purge_expired_tokens(self) -> int:
        async with self.db.write() as session:
            result = await session.execute(
                delete(AuthToken).where(AuthToken.expires_at <= utcnow())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

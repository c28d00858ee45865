"""Meeting materials (paperless meetings): documents and links attached to a meeting.

For `web`: the secretariat and the OA system attach documents (checked by content,
:mod:`scheduling.filetypes`, and limited in size) or links (http/https, optionally only
to hosts the administrator allows); invitees read them with their join link. The bytes go
to a :class:`~scheduling.filestore.FileStore`, the description to ``meeting_materials``.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.errors import IntegrationNotFound, MaterialTooLarge, MeetingNotFound
from scheduling.filestore import FileStore
from scheduling.filetypes import identify
from scheduling.models import Attendee, Meeting
from scheduling.targets import AllowList, check_url, http_host

_SETTING = "SUIMEET_MATERIAL_LINK_HOSTS"


class Material(Base):
    """A document (``kind=file``) or a link (``kind=link``) of one meeting."""

    __tablename__ = "meeting_materials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(120))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(String(2000))
    added_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def clean_filename(name: str) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return (base or "document")[-255:]


class Materials:
    """Attach, list, read and remove the materials of meetings."""

    def __init__(
        self, db: Database, store: FileStore, *, max_bytes: int, link_hosts: AllowList
    ) -> None:
        self.db = db
        self.store = store
        self.max_bytes = max_bytes
        self.link_hosts = link_hosts

    async def _meeting(self, meeting_id: int) -> None:
        async with self.db.read() as session:
            if await session.get(Meeting, meeting_id) is None:
                raise MeetingNotFound(f"meeting {meeting_id} does not exist")

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise MaterialTooLarge(
                f"the file is larger than {self.max_bytes} bytes",
                fields={"file": f"at most {self.max_bytes} bytes"},
            )

    async def add_file(
        self, meeting_id: int, filename: str, data: bytes, actor: str, *, title: str | None = None
    ) -> Material:
        self.check_size(len(data))
        name = clean_filename(filename)
        kind = identify(name, data[:8192], data)
        await self._meeting(meeting_id)
        key = await self.store.put(data, kind.extension)
        row = Material(
            meeting_id=meeting_id, kind="file", title=(title or name)[:200], filename=name,
            content_type=kind.mime, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key, added_by=actor, created_at=utcnow(),
        )  # fmt: skip
        try:
            async with self.db.write() as session:
                session.add(row)
                await session.flush()
        except BaseException:
            await self.store.delete(key)
            raise
        return row

    async def add_link(self, meeting_id: int, url: str, title: str, actor: str) -> Material:
        if self.link_hosts.empty:  # no list: any http(s) link (it is only shown, never fetched)
            http_host(url)
        else:
            check_url(url, self.link_hosts, code="link_host_not_allowed", setting=_SETTING)
        await self._meeting(meeting_id)
        row = Material(
            meeting_id=meeting_id, kind="link", title=title[:200], url=url, added_by=actor,
            created_at=utcnow(),
        )  # fmt: skip
        async with self.db.write() as session:
            session.add(row)
            await session.flush()
        return row

    async def list(self, meeting_id: int) -> Sequence[Material]:
        async with self.db.read() as session:
            query = select(Material).where(Material.meeting_id == meeting_id)
            return (await session.scalars(query.order_by(Material.id))).all()

    async def get(self, meeting_id: int, material_id: int) -> Material:
        async with self.db.read() as session:
            row = await session.get(Material, material_id)
        if row is None or row.meeting_id != meeting_id:
            raise IntegrationNotFound(f"meeting {meeting_id} has no material {material_id}")
        return row

    async def content(self, material: Material) -> bytes:
        if material.storage_key is None:
            raise IntegrationNotFound("this material is a link, not a stored file")
        try:
            return await self.store.get(material.storage_key)
        except FileNotFoundError:
            raise IntegrationNotFound("the stored file is missing") from None

    async def delete(self, meeting_id: int, material_id: int) -> None:
        row = await self.get(meeting_id, material_id)
        async with self.db.write() as session:
            await session.delete(await session.merge(row))
        if row.storage_key is not None:
            await self.store.delete(row.storage_key)

    async def invited(self, meeting_id: int, person_id: int) -> bool:
        """Whether the person may read the meeting's materials (invitee, organiser, chair)."""
        async with self.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
            if meeting is None:
                return False
            if person_id in (meeting.organiser_id, meeting.chair_id):
                return True
            found = await session.scalar(
                select(Attendee.id).where(
                    Attendee.meeting_id == meeting_id,
                    Attendee.person_id == person_id,
                )
            )
            return found is not None

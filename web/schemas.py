"""Schemas shared by every endpoint: pages of results and paging parameters."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from web.api import Schema

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total number of matches."""

    items: list[T]
    total: int
    limit: int
    offset: int


class PageQuery(Schema):
    """Paging and sorting; ``sort`` is a field name, ``-`` in front for descending."""

    limit: int = Field(50, ge=1, le=200, description="Rows per page (1–200).")
    offset: int = Field(0, ge=0, le=10_000_000, description="Rows to skip.")
    q: str | None = Field(None, max_length=100, description="Text to search for.")

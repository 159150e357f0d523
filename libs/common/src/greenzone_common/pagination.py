"""List pagination as API.md says: ``?limit=`` (default 50, max 500) and an opaque ``?cursor=``; responses are
``{"items": [...], "next_cursor": "..." | null}``. Cursors are keyset positions (the sort key of the last item),
so pages stay stable while rows are added."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from greenzone_common.problems import Problem

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    after: list[Any] | None  # the decoded cursor: the sort key of the last item already returned


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "The cursor is not one this API returned", slug="invalid-cursor") from exc
    if not isinstance(value, list):
        raise Problem(400, "The cursor is not one this API returned", slug="invalid-cursor")
    return value


async def page_params(  # async: no I/O, and a plain def dependency would run in the thread pool
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (max 500)")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="Opaque; the next_cursor of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def page_of(rows: list[T], params: PageParams, key: Any) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows; ``key(row)`` gives the row's sort key (a list)."""
    more = len(rows) > params.limit
    items = rows[: params.limit]
    return Page[T](items=items, next_cursor=encode_cursor(key(items[-1])) if more and items else None)

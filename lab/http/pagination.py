"""Two ways to cut a long list into pages, and the envelope each answers with.

**Page and limit** (``?page=3&limit=20``): easy to jump to any page and to show
"page 3 of 17", so the answer carries ``total`` and ``totalPages``. Its cost is
in the store: reaching page N means skipping (N-1)·limit rows (SQL ``OFFSET``
reads and throws them away), and the total is one more count over every match.
Deep pages get slower, and rows inserted meanwhile shift what a page holds.

**Keyset, or cursor** (``?after=<cursor>``): the answer carries ``nextCursor``,
an opaque token naming the last item seen -- here its ``(createdAt, id)`` --
and the next page starts strictly after it. With an index on that order, every
page costs the same however deep, and no item is skipped or repeated when rows
arrive. It cannot jump to page N, and it has no cheap total.

The cursor is base64url of a small JSON array. It is not signed: a client that
forges one only gets a page it could have asked for anyway.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from typing import Any

import orjson

from lab.http.errors import BadRequest


def page_envelope(items: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    """``{"data", "total", "page", "limit", "totalPages"}``."""
    return {"data": items, "total": total, "page": page, "limit": limit,
            "totalPages": math.ceil(total / limit)}


def keyset_envelope(items: list[Any], limit: int, next_cursor: str | None) -> dict[str, Any]:
    """``{"data", "limit", "nextCursor"}``: no total, which is what keyset saves."""
    return {"data": items, "limit": limit, "nextCursor": next_cursor}


def offset(page: int, limit: int) -> int:
    """Rows to skip before ``page`` (pages count from 1)."""
    assert page >= 1 and limit >= 1, (page, limit)
    return (page - 1) * limit


def encode_cursor(created_at: datetime, item_id: int) -> str:
    raw = orjson.dumps([created_at.isoformat(), item_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The ``(createdAt, id)`` a cursor names; a malformed cursor is the client's error (400)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, item_id = orjson.loads(raw)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("Invalid cursor in 'after'") from None
    if type(item_id) is not int or created_at.tzinfo is None:
        raise BadRequest("Invalid cursor in 'after'")
    return created_at, item_id

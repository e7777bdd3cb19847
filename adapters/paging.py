"""Where the next page of a list call is: page numbers, a cursor in the body, or a Link header."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.errors import ResponseShapeError
from adapters.pagination import Pagination
from adapters.rendering import dig

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;[^,]*?\brel="?([^",;]*\bnext\b[^",;]*)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The next page: query parameters to add, or the absolute URL a Link header gave."""

    params: Mapping[str, str]
    url: str | None = None


def first_page(paging: Pagination) -> PageRequest:
    """Parameters of the first request of a paged list."""
    params: dict[str, str] = {}
    if paging.size_param:
        params[paging.size_param] = str(paging.size)
    if paging.style == "page":
        params[paging.page_param] = str(paging.first_page)
    return PageRequest(params)


def next_link(header: str | None) -> str | None:
    """The `rel="next"` target of an RFC 8288 Link header, if any."""
    if not header:
        return None
    match = _NEXT_LINK.search(header)
    return match.group(1).strip() if match else None


def next_page(
    paging: Pagination,
    current: PageRequest,
    found: int,
    data: Any,
    headers: Mapping[str, str],
    base_url: str,
    what: str,
) -> PageRequest | None:
    """The request for the page after `current`, or None when the list is complete."""
    if paging.style == "page":
        if found < paging.size:
            return None
        number = int(current.params[paging.page_param]) + 1
        return PageRequest({**current.params, paging.page_param: str(number)})
    if paging.style == "cursor":
        assert paging.next_cursor_path is not None  # guaranteed by profile validation
        cursor = dig(data, paging.next_cursor_path)
        if cursor is None or cursor == "" or found == 0:
            return None
        return PageRequest({**first_page(paging).params, paging.cursor_param: str(cursor)})
    url = next_link(headers.get("link"))
    if url is None:
        return None
    if not url.startswith(base_url.rstrip("/") + "/") and url != base_url:
        # Credentials go with every request: never follow a link off the receiver's API.
        raise ResponseShapeError(f"{what}: the next-page link leaves the receiver's address")
    return PageRequest({}, url)

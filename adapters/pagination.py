"""How a receiver's list call is paged, as a profile declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Pagination(BaseModel):
    """How a list call pages: page numbers, a cursor from the body, or a Link header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    style: Literal["page", "cursor", "link"]
    page_param: str = Field(default="page", description="page: query parameter of the page.")
    first_page: int = Field(default=1, ge=0, description="page: number of the first page.")
    size_param: str | None = Field(
        default="size", description="page/cursor: query parameter of the page size, or null."
    )
    size: int = Field(default=100, gt=0, description="Items asked for per page.")
    cursor_param: str = Field(default="cursor", description="cursor: query parameter to send.")
    next_cursor_path: str | None = Field(
        default=None, description="cursor: dotted path to the next cursor; empty/absent ends."
    )
    max_pages: int = Field(default=1000, gt=0, description="Safety stop against endless lists.")

    @model_validator(mode="after")
    def _complete(self) -> Pagination:
        if self.style == "cursor" and not self.next_cursor_path:
            raise ValueError("next_cursor_path: required for style cursor")
        return self

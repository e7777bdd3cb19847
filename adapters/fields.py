"""How one of our values becomes the receiver's: renamed, mapped, typed and date-formatted."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.errors import PermanentError

#: A JSON scalar a profile may send or expect.
Scalar = str | int | float | bool | None
ValueType = Literal["string", "integer", "number", "boolean"]

_TRUE = frozenset({"true", "yes", "1", "on", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "off", "n", "f"})


class FieldMap(BaseModel):
    """One of our fields sent under the receiver's key, its value translated on the way."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str = Field(
        min_length=1, description="Receiver's key; dots nest objects, a number an array index."
    )
    values: dict[str, Scalar] = Field(
        default_factory=dict, description="Our value -> theirs (text, number, boolean or null)."
    )
    unmapped: Literal["keep", "null", "reject"] = Field(
        default="keep",
        description="A value missing from `values`: sent as it is, sent as null, or refused.",
    )
    type: ValueType | None = Field(
        default=None, description="JSON type the receiver wants; the value is converted to it."
    )
    date_format: str | None = Field(
        default=None, description="strftime pattern for dates (default ISO 8601, 1990-05-17)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FieldMap:
        if self.unmapped != "keep" and not self.values:
            raise ValueError("unmapped: only meaningful with `values`")
        if self.date_format is not None and "%" not in self.date_format:
            raise ValueError("date_format: a strftime pattern such as %d/%m/%Y")
        return self

    def convert(self, value: Any, what: str) -> Any:
        """Our value as the receiver wants it; a `PermanentError` when it cannot be."""
        if isinstance(value, dt.date):
            value = value.strftime(self.date_format) if self.date_format else value.isoformat()
        if self.values and isinstance(value, str):
            if value in self.values:
                value = self.values[value]
            elif self.unmapped == "null":
                value = None
            elif self.unmapped == "reject":
                # The value itself is personal data: say which field, not what it held.
                raise PermanentError(f"{what}: {self.to}: the value has no entry in `values`")
        if value is None or self.type is None:
            return value
        return _as_type(value, self.type, f"{what}: {self.to}")


def _as_type(value: Any, kind: ValueType, what: str) -> Any:
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise PermanentError(f"{what}: the value is not a boolean")
    if isinstance(value, bool):
        raise PermanentError(f"{what}: a boolean is not {kind}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PermanentError(f"{what}: the value is not a number") from None
    if kind == "number":
        return int(number) if number.is_integer() and not isinstance(value, float) else number
    if not number.is_integer():
        raise PermanentError(f"{what}: the value is not an integer")
    return int(number)

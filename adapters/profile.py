"""Declarative receiver profiles (YAML) that drive the generic REST adapter, and their loader."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.base import Capability, Person
from adapters.errors import ProfileError
from adapters.fields import FieldMap
from adapters.http import AuthKind
from adapters.options import OptionSpec
from adapters.pagination import Pagination

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

PERSON_FIELDS = frozenset(f.name for f in fields(Person))
_TENANT = frozenset({"client_id"})
_CLUB = frozenset({"club_id", "intouch_club_id"})


@dataclass(frozen=True, slots=True)
class CallKind:
    """What one call of the contract may use and must return."""

    capability: Capability
    placeholders: frozenset[str]
    body_fields: frozenset[str]
    returns: Literal["nothing", "id", "items"]


def _person_call(capability: Capability, *, with_id: bool, returns: str) -> CallKind:
    ids = frozenset({"receiver_id"}) if with_id else frozenset()
    return CallKind(
        capability,
        _TENANT | _CLUB | ids,
        PERSON_FIELDS | _TENANT | _CLUB | ids,
        "id" if returns == "id" else "nothing",
    )


CALL_KINDS: dict[str, CallKind] = {
    "create_prospect": _person_call(Capability.PROSPECT_CREATE, with_id=False, returns="id"),
    "update_prospect": _person_call(Capability.PROSPECT_UPDATE, with_id=True, returns="nothing"),
    "save_prospect": _person_call(Capability.PROSPECT_SAVE, with_id=True, returns="id"),
    "create_member": _person_call(Capability.MEMBER_CREATE, with_id=False, returns="id"),
    "update_member": _person_call(Capability.MEMBER_UPDATE, with_id=True, returns="nothing"),
    "save_member": _person_call(Capability.MEMBER_SAVE, with_id=True, returns="id"),
    "convert_prospect": _person_call(Capability.CONVERT_PROSPECT, with_id=True, returns="id"),
    "list_staff": CallKind(Capability.STAFF_LIST, _TENANT | _CLUB, _TENANT | _CLUB, "items"),
    "find_staff_by_email": CallKind(
        Capability.STAFF_BY_EMAIL, _TENANT | {"email"}, _TENANT | {"email"}, "items"
    ),
    "list_lead_sources": CallKind(Capability.LEAD_SOURCE_LIST, _TENANT, _TENANT, "items"),
    "create_lead_source": CallKind(
        Capability.LEAD_SOURCE_CREATE, _TENANT | {"name"}, _TENANT | {"name"}, "id"
    ),
    "update_lead_source": CallKind(
        Capability.LEAD_SOURCE_UPDATE,
        _TENANT | {"name", "receiver_id"},
        _TENANT | {"name", "receiver_id"},
        "nothing",
    ),
    "find_person": CallKind(
        Capability.PERSON_LOOKUP,
        _TENANT | {"email", "external_id"},
        _TENANT | {"email", "external_id"},
        "items",
    ),
}

_PROSPECT_CALLS = ("create_prospect", "update_prospect", "save_prospect")


class CallSpec(BaseModel):
    """How one contract call maps onto one HTTP request of the receiver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(description="Path under the base URL, with {placeholders}.")
    query: dict[str, str] = Field(
        default_factory=dict,
        description="Query parameter -> template; dropped when its value is None.",
    )
    body: dict[str, str | FieldMap] = Field(
        default_factory=dict,
        description="Our field name -> the receiver's (dotted) key, or a FieldMap.",
    )
    static: dict[str, Any] = Field(
        default_factory=dict, description="Constant values sent at these (dotted) keys."
    )
    omit_none: bool = Field(default=False, description="Leave out fields we have no value for.")
    id_path: str | None = Field(default=None, description="Dotted path to the receiver ID.")
    items_path: str | None = Field(
        default=None, description="Dotted path to the list (or single object) in the response."
    )
    id_key: str = "id"
    email_key: str = "email"
    name_key: str = "name"
    not_found_status: list[int] = Field(
        default_factory=list, description="Statuses a lookup answers with when nothing matches."
    )
    external_id_key: str | None = Field(
        default=None,
        description="find_person: the key holding our InTouch ID in each person found; "
        "unset means the receiver stores no external ID.",
    )
    type_key: str | None = Field(
        default=None, description="find_person: the key saying prospect or member."
    )
    exists_status: list[int] = Field(
        default_factory=list,
        description="Statuses that mean 'this exists already' (e.g. 409) on a creating call.",
    )
    exists_id_path: str | None = Field(
        default=None, description="Dotted path to the existing record's ID in such an answer."
    )
    retryable_status: list[int] = Field(
        default_factory=list,
        description="4xx statuses that mean 'not done, try again later' (e.g. 423 Locked).",
    )
    pagination: Pagination | None = Field(default=None, description="List calls: paging.")
    applies_body: bool = Field(
        default=True,
        description="convert_prospect: the call applies the body's fields to the member.",
    )
    follow_up: Literal["update_member", "save_member"] | None = Field(
        default=None,
        description="convert_prospect: call sent after it with our fields on the member.",
    )

    def placeholders(self) -> set[str]:
        """Every placeholder used by the path and the query templates."""
        found = set(PLACEHOLDER.findall(self.path))
        for template in self.query.values():
            found.update(PLACEHOLDER.findall(template))
        return found


class Calls(BaseModel):
    """The receiver's calls; a missing entry means the capability is absent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    create_prospect: CallSpec | None = None
    update_prospect: CallSpec | None = None
    save_prospect: CallSpec | None = None
    create_member: CallSpec | None = None
    update_member: CallSpec | None = None
    save_member: CallSpec | None = None
    convert_prospect: CallSpec | None = None
    list_staff: CallSpec | None = None
    find_staff_by_email: CallSpec | None = None
    list_lead_sources: CallSpec | None = None
    create_lead_source: CallSpec | None = None
    update_lead_source: CallSpec | None = None
    find_person: CallSpec | None = None

    def present(self) -> dict[str, CallSpec]:
        """The calls the profile defines, by name."""
        return {name: spec for name in CALL_KINDS if (spec := getattr(self, name)) is not None}


class ReceiverProfile(BaseModel):
    """Everything the generic REST adapter needs to talk to one receiver product."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    auth: list[AuthKind] = Field(default_factory=lambda: list[AuthKind](["none"]), min_length=1)
    api_key_header: str | None = None
    idempotency_key_header: str | None = Field(
        default=None,
        description="Header carrying an idempotency key on creating calls, where honoured.",
    )
    base_url: str | None = Field(
        default=None,
        description="Full-SaaS platforms: the platform's own API address, used by tenants "
        "turned up without a host.",
    )
    options: list[OptionSpec] = Field(
        default_factory=list, description="Custom options a tenant's turn-up may or must give."
    )
    calls: Calls

    @model_validator(mode="after")
    def _calls_consistent(self) -> ReceiverProfile:
        present = self.calls.present()
        for name, spec in present.items():
            _check_call(name, spec)
        convert = present.get("convert_prospect")
        if convert is not None:
            if convert.follow_up is not None and convert.follow_up not in present:
                raise ValueError(
                    f"calls.convert_prospect.follow_up: the profile has no {convert.follow_up} call"
                )
            if not convert.applies_body and convert.follow_up is None:
                raise ValueError(
                    "calls.convert_prospect.follow_up: required when applies_body is false, "
                    "or the member keeps the prospect's old fields"
                )
        if self.base_url is not None:
            _check_base_url(self.base_url)
        names = [option.name for option in self.options]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"options: declared twice: {twice}")
        return self

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Derived from which calls exist; STAFF_OWNER when a prospect call sends an owner."""
        present = self.calls.present()
        caps = {CALL_KINDS[name].capability for name in present}
        if any(
            "staff_owner_receiver_id" in present[name].body
            for name in _PROSPECT_CALLS
            if name in present
        ):
            caps.add(Capability.STAFF_OWNER)
        return frozenset(caps)


def _check_base_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url: an http(s) address such as https://api.platform.example/v2")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("base_url: no credentials, query or fragment (credentials go in auth)")


def _check_call(name: str, spec: CallSpec) -> None:
    kind = CALL_KINDS[name]
    where = f"calls.{name}"
    if not spec.path.startswith("/"):
        raise ValueError(f"{where}.path: must start with '/'")
    unknown = spec.placeholders() - kind.placeholders
    if unknown:
        allowed = ", ".join(sorted(f"{{{p}}}" for p in kind.placeholders))
        raise ValueError(
            f"{where}.path: unknown placeholder(s) {sorted(unknown)}; allowed here: {allowed}"
        )
    bad_fields = set(spec.body) - kind.body_fields
    if bad_fields:
        raise ValueError(f"{where}.body: unknown field(s) {sorted(bad_fields)}")
    if kind.returns == "id" and not spec.id_path:
        raise ValueError(f"{where}.id_path: required, the call returns the receiver ID")
    if spec.pagination is not None and kind.returns != "items":
        raise ValueError(f"{where}.pagination: only list calls page")
    if (spec.follow_up is not None or not spec.applies_body) and name != "convert_prospect":
        raise ValueError(f"{where}: follow_up and applies_body are for convert_prospect only")
    if kind.returns == "items" and spec.items_path is None:
        raise ValueError(f"{where}.items_path: required, say where the list is ('' for the root)")
    if "receiver_id" in kind.placeholders and name != "save_prospect" and name != "save_member":
        sends_id = "receiver_id" in spec.placeholders() or "receiver_id" in spec.body
        if not sends_id:
            raise ValueError(f"{where}: must send {{receiver_id}} in its path, query or body")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` onto `base`; a null in `override` deletes the key."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile is a mapping with 'name' and 'calls'")
    return data


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ProfileError(f"{path}: 'extends' loops through {[p.name for p in seen]}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ProfileError(f"{path}: extends: must be the name of a profile in the same folder")
    base_path = path.with_name(f"{parent}.yaml")
    if not base_path.exists():
        raise ProfileError(f"{path}: extends: no profile {parent!r} next to it ({base_path})")
    base = _resolve(base_path, (*seen, path))
    base.pop("description", None)
    return _merge(base, data)


def _line_of(path: Path, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest key of `loc` found in the file itself (not in what it extends)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if k.value == str(part)]
            if not found:
                break
            line, node = found[0][0].start_mark.line + 1, found[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


_BRANCH_TYPES = frozenset({"string_type", "model_type", "dict_type", "model_attributes_type"})


def _clean_loc(loc: Sequence[int | str]) -> tuple[int | str, ...]:
    # Unions add their branch to the location (`str`, `function-after[...]`): not a key.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _BRANCHES)))


_BRANCHES = frozenset({"str", "int", "float", "bool", "FieldMap", "CallSpec", "OptionSpec"})


def _describe(exc: ValidationError, path: Path) -> str:
    errors = [(e, _clean_loc(e["loc"])) for e in exc.errors()]
    # A union's "not this branch" errors are noise beside the real one at the same key.
    kept = [
        (e, loc)
        for e, loc in errors
        if e["type"] not in _BRANCH_TYPES
        or all(other["type"] in _BRANCH_TYPES for other, at in errors if at == loc)
    ]
    lines: list[str] = []
    for error, loc_parts in kept:
        loc = ".".join(str(part) for part in loc_parts)
        message = str(error["msg"]).removeprefix("Value error, ")
        # Model-level checks name their key in the message: find its line from there.
        where = loc_parts or tuple(message.split(":", 1)[0].split("."))
        line = _line_of(path, [int(p) if str(p).isdigit() else p for p in where])
        text = f"{loc}: {message}" if loc else message
        text = f"line {line}: {text}" if line else text
        if text not in lines:
            lines.append(text)
    return "; ".join(lines)


def load_profile(path: Path) -> ReceiverProfile:
    """Read and validate one profile; errors name the file and the bad key."""
    # Top-level 'x-' keys hold YAML anchors shared by calls, as in compose files.
    data = {k: v for k, v in _resolve(path).items() if not str(k).startswith("x-")}
    try:
        return ReceiverProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{path}: {_describe(exc, path)}") from exc


def load_profile_dir(directory: Path) -> list[ReceiverProfile]:
    """Every `*.yaml` profile in a folder, sorted by file name."""
    return [load_profile(path) for path in sorted(directory.glob("*.yaml"))]

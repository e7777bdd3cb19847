"""The generic REST adapter: every call is rendered from a declarative receiver profile."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from adapters.base import (
    Capability,
    ClubRef,
    Person,
    ReceiverClient,
    ReceiverLeadSource,
    ReceiverStaff,
)
from adapters.config import ReceiverConfig
from adapters.errors import MisconfiguredError, NotSupported, PermanentError, ResponseShapeError
from adapters.http import AuthConfig, ReceiverHttp
from adapters.profile import CALL_KINDS, PLACEHOLDER, CallSpec, FieldMap, ReceiverProfile

log = logging.getLogger(__name__)

Values = Mapping[str, Any]


def render_path(template: str, values: Values, what: str) -> str:
    """Fill `{placeholders}` with URL-quoted values; a missing value is a permanent error."""

    def fill(match: Any) -> str:
        value = values.get(match.group(1))
        if value is None:
            raise PermanentError(f"{what}: no value for {{{match.group(1)}}} in the path")
        return quote(str(value), safe="")

    return PLACEHOLDER.sub(fill, template)


def render_query(query: Mapping[str, str], values: Values) -> dict[str, str]:
    """Query parameters whose placeholders all have values; the others are left out."""
    params: dict[str, str] = {}
    for name, template in query.items():
        wanted = PLACEHOLDER.findall(template)
        if any(values.get(key) is None for key in wanted):
            continue
        params[name] = PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return params


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _wire(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def render_body(spec: CallSpec, values: Values) -> dict[str, Any]:
    """The JSON body: our values under the receiver's keys, plus the profile's constants."""
    body: dict[str, Any] = {}
    for dotted, constant in spec.static.items():
        _put(body, dotted, constant)
    for ours, mapping in spec.body.items():
        value = _wire(values.get(ours))
        if value is None and spec.omit_none:
            continue
        if isinstance(mapping, FieldMap):
            target = mapping.to
            if isinstance(value, str):
                value = mapping.values.get(value, value)
        else:
            target = mapping
        _put(body, target, value)
    return body


def dig(data: Any, dotted: str) -> Any:
    """The value at a dotted path ('' is the root); None where the path does not exist."""
    if not dotted:
        return data
    for part in dotted.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _as_id(value: Any, what: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ResponseShapeError(f"{what}: no receiver ID at {where!r} in the response")
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def person_values(person: Person) -> dict[str, Any]:
    """A person's fields by our names, as the body mapping reads them."""
    return {f.name: getattr(person, f.name) for f in dataclasses.fields(person)}


class RestReceiverClient(ReceiverClient):
    """A `ReceiverClient` for any receiver whose API a `ReceiverProfile` describes."""

    def __init__(
        self,
        profile: ReceiverProfile,
        config: ReceiverConfig,
        *,
        custom_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if config.auth.kind not in profile.auth:
            raise MisconfiguredError(
                f"receiver {profile.name!r} takes auth {profile.auth}, turn-up gives "
                f"{config.auth.kind!r}"
            )
        auth = config.auth
        if profile.api_key_header and auth.kind == "api_key":
            auth = AuthConfig(kind="api_key", secret=auth.secret, header=profile.api_key_header)
        self.name = profile.name
        self._profile = profile
        self._capabilities = profile.capabilities
        self._client_id = config.receiver_client_id
        self._http = ReceiverHttp(
            config.base_url,
            auth=auth,
            timeouts=config.timeouts,
            limits=config.limits,
            transport=config.transport,
            verify=config.verify,
            custom_transport=custom_transport,
        )

    def __repr__(self) -> str:
        return f"<RestReceiverClient {self.name} client={self._client_id} {self._http.base_url}>"

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    @property
    def profile(self) -> ReceiverProfile:
        """The profile this client renders its calls from."""
        return self._profile

    def _spec(self, call: str) -> CallSpec:
        spec: CallSpec | None = getattr(self._profile.calls, call)
        if spec is None:
            raise NotSupported(CALL_KINDS[call].capability, self.name)
        return spec

    async def _send(self, call: str, values: dict[str, Any]) -> tuple[CallSpec, Any, str]:
        spec = self._spec(call)
        values = {"client_id": self._client_id, **values}
        what = f"{self.name}.{call}"
        path = render_path(spec.path, values, what)
        params = render_query(spec.query, values)
        body = render_body(spec, values) if spec.method != "GET" else None
        response = await self._http.request(spec.method, path, params=params, json_body=body)
        return spec, response.json(f"{what} {spec.method} {path}"), what

    async def _send_for_id(self, call: str, values: dict[str, Any]) -> str:
        spec, data, what = await self._send(call, values)
        assert spec.id_path is not None  # guaranteed by profile validation
        return _as_id(dig(data, spec.id_path), what, spec.id_path)

    async def _send_for_items(self, call: str, values: dict[str, Any]) -> list[Mapping[str, Any]]:
        try:
            spec, data, what = await self._send(call, values)
        except PermanentError as exc:
            if exc.status is not None and exc.status in self._spec(call).not_found_status:
                return []
            raise
        assert spec.items_path is not None  # guaranteed by profile validation
        found = dig(data, spec.items_path)
        if found is None:
            return []
        items = [found] if isinstance(found, Mapping) else found
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise ResponseShapeError(f"{what}: {spec.items_path!r} is not a list of objects")
        return items

    def _person(self, club: ClubRef, person: Person, receiver_id: str | None) -> dict[str, Any]:
        values = person_values(person)
        values.update(
            club_id=club.receiver_club_id,
            intouch_club_id=club.intouch_club_id,
            receiver_id=receiver_id,
            external_id=person.intouch_id,
        )
        return values

    # Prospects and members -------------------------------------------------------------------

    async def create_prospect(self, club: ClubRef, person: Person) -> str:
        return await self._send_for_id("create_prospect", self._person(club, person, None))

    async def update_prospect(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        await self._send("update_prospect", self._person(club, person, receiver_id))

    async def save_prospect(self, club: ClubRef, person: Person, receiver_id: str | None) -> str:
        return await self._send_for_id("save_prospect", self._person(club, person, receiver_id))

    async def create_member(self, club: ClubRef, person: Person) -> str:
        return await self._send_for_id("create_member", self._person(club, person, None))

    async def update_member(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        await self._send("update_member", self._person(club, person, receiver_id))

    async def save_member(self, club: ClubRef, person: Person, receiver_id: str | None) -> str:
        return await self._send_for_id("save_member", self._person(club, person, receiver_id))

    async def convert_prospect(self, club: ClubRef, receiver_id: str, person: Person) -> str:
        return await self._send_for_id("convert_prospect", self._person(club, person, receiver_id))

    # Staff -----------------------------------------------------------------------------------

    def _staff(self, call: str, item: Mapping[str, Any]) -> ReceiverStaff:
        spec = self._spec(call)
        return ReceiverStaff(
            id=_as_id(item.get(spec.id_key), f"{self.name}.{call}", spec.id_key),
            email=_optional_text(item.get(spec.email_key)),
            name=_optional_text(item.get(spec.name_key)),
        )

    async def list_staff(self, club: ClubRef | None) -> list[ReceiverStaff]:
        values: dict[str, Any] = {"club_id": None, "intouch_club_id": None}
        if club is not None:
            values.update(club_id=club.receiver_club_id, intouch_club_id=club.intouch_club_id)
        items = await self._send_for_items("list_staff", values)
        return [self._staff("list_staff", item) for item in items]

    async def find_staff_by_email(self, email: str) -> ReceiverStaff | None:
        wanted = email.strip().casefold()
        items = await self._send_for_items("find_staff_by_email", {"email": email.strip()})
        for item in items:
            staff = self._staff("find_staff_by_email", item)
            # Some receivers search by prefix or substring: only an exact match links.
            if staff.email is not None and staff.email.strip().casefold() == wanted:
                return staff
        return None

    # Lead sources ----------------------------------------------------------------------------

    async def list_lead_sources(self) -> list[ReceiverLeadSource]:
        spec = self._spec("list_lead_sources")
        what = f"{self.name}.list_lead_sources"
        items = await self._send_for_items("list_lead_sources", {})
        return [
            ReceiverLeadSource(
                id=_as_id(item.get(spec.id_key), what, spec.id_key),
                name=str(item.get(spec.name_key) or ""),
            )
            for item in items
        ]

    async def create_lead_source(self, name: str) -> str:
        return await self._send_for_id("create_lead_source", {"name": name})

    async def update_lead_source(self, receiver_id: str, name: str) -> None:
        await self._send("update_lead_source", {"receiver_id": receiver_id, "name": name})

    # Reconciliation --------------------------------------------------------------------------

    async def find_person(self, email: str | None, external_id: str | None) -> str | None:
        if email is None and external_id is None:
            raise ValueError("find_person needs an email or an external ID")
        spec = self._spec("find_person")
        items = await self._send_for_items(
            "find_person", {"email": email, "external_id": external_id}
        )
        if not items:
            return None
        return _as_id(items[0].get(spec.id_key), f"{self.name}.find_person", spec.id_key)

    async def aclose(self) -> None:
        await self._http.aclose()

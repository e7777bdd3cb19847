"""The generic REST adapter: every call is rendered from a declarative receiver profile."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from adapters.base import (
    Capability,
    ClubRef,
    Person,
    ReceiverClient,
    ReceiverLeadSource,
    ReceiverPerson,
    ReceiverStaff,
)
from adapters.config import ReceiverConfig
from adapters.errors import (
    AdapterError,
    AlreadyExists,
    MisconfiguredError,
    NotSupported,
    PermanentError,
    ResponseShapeError,
    RetryableError,
)
from adapters.http import AuthConfig, ReceiverHttp, ReceiverResponse
from adapters.paging import PageRequest, first_page, next_page
from adapters.profile import CALL_KINDS, CallSpec, ReceiverProfile
from adapters.rendering import as_id, dig, optional_text, render_body, render_path, render_query

log = logging.getLogger(__name__)


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

    @property
    def stores_external_id(self) -> bool:
        lookup = self._profile.calls.find_person
        return lookup is not None and lookup.external_id_key is not None

    @property
    def takes_idempotency_keys(self) -> bool:
        return self._profile.idempotency_key_header is not None

    async def _send(
        self,
        call: str,
        values: dict[str, Any],
        idempotency_key: str | None = None,
        page: PageRequest | None = None,
    ) -> tuple[CallSpec, Any, str, ReceiverResponse]:
        spec = self._spec(call)
        values = {"client_id": self._client_id, **values}
        what = f"{self.name}.{call}"
        path = render_path(spec.path, values, what)
        params = render_query(spec.query, values)
        if page is not None:
            params.update(page.params)
            path = page.url or path
        body = render_body(spec, values, what) if spec.method != "GET" else None
        header = self._profile.idempotency_key_header
        headers = {header: idempotency_key} if header and idempotency_key else None
        try:
            response = await self._http.request(
                # An empty `params` would make httpx drop the query of a next-page link.
                spec.method,
                path,
                params=params or None,
                json_body=body,
                headers=headers,
            )
        except PermanentError as exc:
            if exc.status is not None and exc.status in spec.retryable_status:
                # The profile says this refusal is temporary and nothing was applied.
                raise RetryableError(str(exc), maybe_applied=False) from exc
            if exc.status is None or exc.status not in spec.exists_status:
                raise
            found = dig(exc.body, spec.exists_id_path) if spec.exists_id_path else None
            raise AlreadyExists(
                str(exc),
                status=exc.status,
                receiver_id=None if found is None else as_id(found, what, "exists_id_path"),
            ) from exc
        return spec, response.json(f"{what} {spec.method} {path}"), what, response

    async def _send_for_id(
        self, call: str, values: dict[str, Any], idempotency_key: str | None = None
    ) -> str:
        spec, data, what, _ = await self._send(call, values, idempotency_key)
        assert spec.id_path is not None  # guaranteed by profile validation
        return as_id(dig(data, spec.id_path), what, spec.id_path)

    async def _send_for_items(self, call: str, values: dict[str, Any]) -> list[Mapping[str, Any]]:
        paging = self._spec(call).pagination
        page = first_page(paging) if paging else None
        items: list[Mapping[str, Any]] = []
        limit = paging.max_pages if paging else 1
        for _ in range(limit):
            try:
                spec, data, what, response = await self._send(call, values, page=page)
            except PermanentError as exc:
                if exc.status is not None and exc.status in self._spec(call).not_found_status:
                    return items
                raise
            found = _items(data, spec, what)
            items.extend(found)
            if paging is None or page is None:
                return items
            page = next_page(
                paging, page, len(found), data, response.headers, self._http.base_url, what
            )
            if page is None:
                return items
        raise ResponseShapeError(f"{self.name}.{call}: more than {limit} pages")

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

    async def create_prospect(
        self, club: ClubRef, person: Person, *, idempotency_key: str | None = None
    ) -> str:
        values = self._person(club, person, None)
        return await self._send_for_id("create_prospect", values, idempotency_key)

    async def update_prospect(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        await self._send("update_prospect", self._person(club, person, receiver_id))

    async def save_prospect(
        self,
        club: ClubRef,
        person: Person,
        receiver_id: str | None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        values = self._person(club, person, receiver_id)
        return await self._send_for_id("save_prospect", values, idempotency_key)

    async def create_member(
        self, club: ClubRef, person: Person, *, idempotency_key: str | None = None
    ) -> str:
        values = self._person(club, person, None)
        return await self._send_for_id("create_member", values, idempotency_key)

    async def update_member(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        await self._send("update_member", self._person(club, person, receiver_id))

    async def save_member(
        self,
        club: ClubRef,
        person: Person,
        receiver_id: str | None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        values = self._person(club, person, receiver_id)
        return await self._send_for_id("save_member", values, idempotency_key)

    async def convert_prospect(
        self,
        club: ClubRef,
        receiver_id: str,
        person: Person,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        values = self._person(club, person, receiver_id)
        member_id = await self._send_for_id("convert_prospect", values, idempotency_key)
        follow_up = self._spec("convert_prospect").follow_up
        if follow_up is not None:
            # The platform converts the prospect as it is: our fields follow on the member.
            member = dataclasses.replace(person, user_type="member")
            try:
                await self._send(follow_up, self._person(club, member, member_id))
            except AdapterError as exc:
                exc.maybe_applied = True  # the conversion itself was made
                raise
        return member_id

    # Staff -----------------------------------------------------------------------------------

    def _staff(self, call: str, item: Mapping[str, Any]) -> ReceiverStaff:
        spec = self._spec(call)
        return ReceiverStaff(
            id=as_id(dig(item, spec.id_key), f"{self.name}.{call}", spec.id_key),
            email=optional_text(dig(item, spec.email_key)),
            name=optional_text(dig(item, spec.name_key)),
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
                id=as_id(dig(item, spec.id_key), what, spec.id_key),
                name=str(dig(item, spec.name_key) or ""),
            )
            for item in items
        ]

    async def create_lead_source(self, name: str, *, idempotency_key: str | None = None) -> str:
        return await self._send_for_id("create_lead_source", {"name": name}, idempotency_key)

    async def update_lead_source(self, receiver_id: str, name: str) -> None:
        await self._send("update_lead_source", {"receiver_id": receiver_id, "name": name})

    # Reconciliation --------------------------------------------------------------------------

    async def find_people(self, email: str | None, external_id: str | None) -> list[ReceiverPerson]:
        if email is None and external_id is None:
            raise ValueError("find_people needs an email or an external ID")
        spec = self._spec("find_person")
        what = f"{self.name}.find_person"
        items = await self._send_for_items(
            "find_person", {"email": email, "external_id": external_id}
        )
        people = []
        for item in items:
            kind = dig(item, spec.type_key) if spec.type_key else None
            people.append(
                ReceiverPerson(
                    id=as_id(dig(item, spec.id_key), what, spec.id_key),
                    external_id=(
                        optional_text(dig(item, spec.external_id_key))
                        if spec.external_id_key
                        else None
                    ),
                    email=optional_text(dig(item, spec.email_key)),
                    user_type=kind if kind in ("prospect", "member") else None,
                )
            )
        return people

    async def aclose(self) -> None:
        await self._http.aclose()


def _items(data: Any, spec: CallSpec, what: str) -> list[Mapping[str, Any]]:
    """The objects at the call's `items_path` (one object counts as a list of one)."""
    assert spec.items_path is not None  # guaranteed by profile validation
    found = dig(data, spec.items_path)
    if found is None:
        return []
    items = [found] if isinstance(found, Mapping) else found
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ResponseShapeError(f"{what}: {spec.items_path!r} is not a list of objects")
    return items

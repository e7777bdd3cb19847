"""The typed profile format: value maps, arrays, paging, statuses, convert follow-up, base URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import ClubRef, Person
from adapters.config import ReceiverConfig
from adapters.errors import PermanentError, ProfileError, RetryableError
from adapters.profile import ReceiverProfile, load_profile
from adapters.rest import RestReceiverClient

CLUB = ClubRef("7", "CL1")

TYPED = """\
name: typed
calls:
  save_prospect:
    method: POST
    path: /members
    omit_none: true
    static: {source: intouch, tags.0: crm, meta.version: 2}
    body:
      receiver_id: {to: memberId, type: integer}
      first_name: name.first
      last_name: name.last
      status: {to: active, values: {active: true, inactive: false}}
      gender: {to: sex, values: {M: male, F: female}, unmapped: "null"}
      birthdate: {to: dob, date_format: "%d/%m/%Y"}
      mobile_phone: phones.0.number
      home_phone: phones.1.number
      staff_owner_receiver_id: {to: ownerId, type: integer}
    id_path: data.0.memberId
"""


def write(tmp_path: Path, text: str, name: str = "typed.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def client(profile: ReceiverProfile, handler: Callable[[httpx.Request], httpx.Response]) -> Any:
    config = ReceiverConfig(scheme="http", host="platform.test", receiver_client_id="C100")
    return RestReceiverClient(profile, config, custom_transport=httpx.MockTransport(handler))


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- seen case 1: values are not only strings ---------------------------------------------------


def test_value_maps_send_booleans_numbers_enums_dates_and_arrays(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, TYPED))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"memberId": 9001}]})

    async def scenario() -> str:
        async with client(profile, handler) as c:
            person = Person(
                "Ann",
                "Lee",
                status="inactive",
                gender="F",
                birthdate=dt.date(1990, 5, 17),
                mobile_phone="+47 1",
                staff_owner_receiver_id="42",
            )
            return str(await c.save_prospect(CLUB, person, "17"))

    assert asyncio.run(scenario()) == "9001"  # a numeric ID at a path through an array
    assert body_of(seen[0]) == {
        "source": "intouch",
        "tags": ["crm"],
        "meta": {"version": 2},
        "memberId": 17,
        "name": {"first": "Ann", "last": "Lee"},
        "active": False,
        "sex": "female",
        "dob": "17/05/1990",
        "phones": [{"number": "+47 1"}],
        "ownerId": 42,
    }


def test_unmapped_values_are_kept_nulled_or_refused_without_echoing_them(tmp_path: Path) -> None:
    strict = TYPED.replace('unmapped: "null"', "unmapped: reject")
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(body_of(request))
        return httpx.Response(200, json={"data": [{"memberId": "x-1"}]})

    async def scenario(text: str) -> None:
        async with client(load_profile(write(tmp_path, text)), handler) as c:
            await c.save_prospect(CLUB, Person("A", "B", gender="X-secret"), None)

    asyncio.run(scenario(TYPED))
    assert "sex" not in seen[0]  # nulled, then omitted (omit_none)
    with pytest.raises(PermanentError) as caught:
        asyncio.run(scenario(strict))
    assert "sex" in str(caught.value) and "X-secret" not in str(caught.value)
    assert len(seen) == 1


def test_a_value_that_cannot_take_the_type_is_a_permanent_error(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, TYPED))

    async def scenario() -> None:
        async with client(profile, lambda _: httpx.Response(200, json={})) as c:
            await c.save_prospect(CLUB, Person("A", "B"), "not-a-number")

    with pytest.raises(PermanentError, match="memberId: the value is not a number"):
        asyncio.run(scenario())


# -- validation names the line and the key ------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "type: integer}",
            "type: int}",
            "line 9: calls.save_prospect.body.receiver_id.type: Input should be",
        ),
        (
            'date_format: "%d/%m/%Y"',
            "date_format: dd/mm",
            "line 14: calls.save_prospect.body.birthdate: date_format: a strftime",
        ),
        (
            "method: POST",
            "method: POST\n    pagination: {style: page}",
            "line 5: calls.save_prospect.pagination: only list calls page",
        ),
        ("name: typed", "name: typed\nbase_url: ftp://x", "line 2: base_url: an http(s)"),
    ],
)
def test_validation_messages_name_the_line_and_the_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, TYPED.replace(old, new)))
    assert expected in str(caught.value)


# -- status mapping -----------------------------------------------------------------------------


def test_retryable_status_is_retried_and_exists_status_names_the_id(tmp_path: Path) -> None:
    text = TYPED.replace(
        "    id_path: data.0.memberId\n",
        "    id_path: data.0.memberId\n    retryable_status: [423]\n"
        "    exists_status: [409]\n    exists_id_path: conflict.id\n",
    )
    answers = iter(
        [httpx.Response(423, json={}), httpx.Response(409, json={"conflict": {"id": 5}})]
    )
    profile = load_profile(write(tmp_path, text))

    async def scenario() -> list[BaseException]:
        caught: list[BaseException] = []
        async with client(profile, lambda _: next(answers)) as c:
            for _ in range(2):
                try:
                    await c.save_prospect(CLUB, Person("A", "B"), None)
                except Exception as exc:
                    caught.append(exc)
        return caught

    locked, exists = asyncio.run(scenario())
    assert isinstance(locked, RetryableError) and not locked.maybe_applied
    assert getattr(exists, "receiver_id", None) == "5"


# -- seen case 3: a convert that copies the prospect as it is -----------------------------------


CONVERT = """\
name: copying-convert
calls:
  update_member:
    method: PUT
    path: /members/{receiver_id}
    body: {first_name: firstName, city: city}
  convert_prospect:
    method: POST
    path: /prospects/{receiver_id}/convert
    id_path: member.id
    applies_body: false
    follow_up: update_member
"""


class CopyingPlatform:
    """A platform whose convert turns the stored prospect into a member, ignoring the body."""

    def __init__(self) -> None:
        self.people: dict[str, dict[str, Any]] = {"p1": {"firstName": "Ann", "city": "Oslo"}}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if parts[0] == "prospects" and parts[-1] == "convert":
            self.people["m1"] = dict(self.people.pop(parts[1]))
            return httpx.Response(200, json={"member": {"id": "m1"}})
        if request.method == "PUT" and parts[0] == "members":
            self.people[parts[1]].update(body_of(request))
            return httpx.Response(204)
        return httpx.Response(404)


def test_convert_with_a_change_ends_with_our_fields_on_the_member(tmp_path: Path) -> None:
    platform = CopyingPlatform()
    profile = load_profile(write(tmp_path, CONVERT))

    async def scenario() -> str:
        async with client(profile, platform) as c:
            moved = Person("Ann", "Lee", user_type="member", city="Bergen")
            return await c.convert_prospect(CLUB, "p1", moved)

    assert asyncio.run(scenario()) == "m1"
    assert platform.people == {"m1": {"firstName": "Ann", "city": "Bergen"}}


def test_a_convert_whose_follow_up_is_refused_says_it_may_have_been_applied(
    tmp_path: Path,
) -> None:
    """The conversion was made before the follow-up's 400: the error must not void the
    convert's pending marker (a refusal of a one-request call would)."""
    platform = CopyingPlatform()
    profile = load_profile(write(tmp_path, CONVERT))

    def refusing(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(400, json={"error": "no"})
        return platform(request)

    async def scenario() -> BaseException:
        async with client(profile, refusing) as c:
            try:
                await c.convert_prospect(CLUB, "p1", Person("Ann", "Lee", user_type="member"))
            except PermanentError as exc:
                return exc
        raise AssertionError("the follow-up's 400 was not raised")

    error = asyncio.run(scenario())
    assert error.maybe_applied and "m1" in platform.people


def test_a_convert_that_ignores_the_body_must_say_what_follows(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="follow_up: required when applies_body is false"):
        load_profile(write(tmp_path, CONVERT.replace("    follow_up: update_member\n", "")))
    with pytest.raises(ProfileError, match="the profile has no save_member call"):
        load_profile(
            write(tmp_path, CONVERT.replace("follow_up: update_member", "follow_up: save_member"))
        )


# -- pagination ---------------------------------------------------------------------------------

PAGED = """\
name: paged
calls:
  list_lead_sources:
    method: GET
    path: /lead-sources
    items_path: {items}
    id_key: ref.id
    pagination: {paging}
"""

SOURCES = [{"ref": {"id": n}, "name": f"Source {n}"} for n in range(5)]


def paged(tmp_path: Path, items: str, paging: str) -> ReceiverProfile:
    return load_profile(write(tmp_path, PAGED.format(items=items, paging=paging)))


def run_list(profile: ReceiverProfile, handler: Callable[[httpx.Request], httpx.Response]) -> Any:
    async def scenario() -> Any:
        async with client(profile, handler) as c:
            return await c.list_lead_sources()

    return asyncio.run(scenario())


def test_page_numbers_until_a_short_page(tmp_path: Path) -> None:
    profile = paged(
        tmp_path, "content", "{style: page, page_param: p, size_param: n, size: 2, first_page: 0}"
    )
    asked: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        asked.append(query)
        start = int(query["p"]) * 2
        return httpx.Response(200, json={"content": SOURCES[start : start + 2]})

    found = run_list(profile, handler)
    assert [s.id for s in found] == ["0", "1", "2", "3", "4"]
    assert asked == [{"p": "0", "n": "2"}, {"p": "1", "n": "2"}, {"p": "2", "n": "2"}]


def test_cursor_from_the_body(tmp_path: Path) -> None:
    profile = paged(tmp_path, "data", "{style: cursor, next_cursor_path: meta.next, size: 3}")

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor", "0"))
        nxt = start + 3 if start + 3 < len(SOURCES) else None
        return httpx.Response(200, json={"data": SOURCES[start : start + 3], "meta": {"next": nxt}})

    assert [s.name for s in run_list(profile, handler)] == [f"Source {n}" for n in range(5)]


def test_link_header_next_and_never_off_the_receiver(tmp_path: Path) -> None:
    from adapters.paging import next_link

    profile = paged(tmp_path, "''", "{style: link, size_param: null}")

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "0"))
        headers = {}
        if page < 2:
            headers["Link"] = f'<http://platform.test/lead-sources?page={page + 1}>; rel="next"'
        return httpx.Response(200, json=SOURCES[page * 2 : page * 2 + 2], headers=headers)

    assert len(run_list(profile, handler)) == 5

    def leaving(request: httpx.Request) -> httpx.Response:
        link = '<http://elsewhere.test/steal>; rel="next"'
        return httpx.Response(200, json=SOURCES[:2], headers={"Link": link})

    with pytest.raises(PermanentError, match="leaves the receiver"):
        run_list(profile, leaving)
    assert next_link('<a>; rel="prev", <b>; rel="next"') == "b"
    assert next_link('<a>; rel="prev"') is None


def test_the_worked_example_of_the_docs_loads(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "adapters.md"
    text = docs.read_text().split("```yaml\nname: gymflow", 1)[1].split("```", 1)[0]
    profile = load_profile(write(tmp_path, "name: gymflow" + text, "gymflow.yaml"))
    convert = profile.calls.convert_prospect
    assert convert is not None and convert.follow_up == "update_member"
    assert [o.name for o in profile.options] == ["site"]

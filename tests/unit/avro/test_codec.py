"""The Avro contracts: round trips, compatibility with registered versions, decode errors."""

from __future__ import annotations

import copy
import datetime as dt
import struct
from pathlib import Path
from typing import Any

import pytest

from streams.avro.codec import AvroCodec, Codecs
from streams.avro.compat import incompatibilities, sample_record
from streams.avro.registry import FileRegistry
from streams.avro.schemas import SUBJECTS, load_current_schemas
from streams.exceptions import RecordDecodeError, SchemaNotRegisteredError, UnknownSchemaError

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

USER_FIELDS = [
    "first_name", "last_name", "status", "user_type", "birthdate", "gender", "address1",
    "address2", "city", "zipcode", "state", "country", "mobile_phone", "home_phone",
    "work_phone", "company",
]  # fmt: skip


def full_user(**overrides: Any) -> dict[str, Any]:
    user = {
        "event_id": "3f1c", "occurred_at": NOW, "client_id": "100", "club_id": "7",
        "intouch_id": "5001", "version": 3, "user_type": "PROSPECT", "status": "ACTIVE",
        "first_name": "Pete", "last_name": "Prospect", "email": "pete@example.com",
        "birthdate": dt.date(1990, 4, 1), "gender": "M", "address1": "1 Main St",
        "address2": None, "city": "Springfield", "zipcode": "12345", "state": "IL",
        "country": "US", "mobile_phone": "555-0100", "home_phone": "555-0101",
        "work_phone": "555-0102", "company": "Acme", "staff_owner_id": "1111",
        "lead_source_id": "2222",
    }  # fmt: skip
    user.update(overrides)
    return user


@pytest.fixture(scope="module")
def codecs() -> Codecs:
    return Codecs(FileRegistry())


def test_user_changed_carries_every_field_of_the_guide() -> None:
    fields = {f["name"] for f in load_current_schemas()["UserChanged"]["fields"]}
    assert set(USER_FIELDS) <= fields
    assert {"email", "staff_owner_id", "lead_source_id", "event_id", "occurred_at"} <= fields
    assert {"client_id", "club_id", "intouch_id"} <= fields
    address2 = next(
        f for f in load_current_schemas()["UserChanged"]["fields"] if f["name"] == "address2"
    )
    assert address2["type"] == ["null", "string"] and address2["default"] is None
    staff = {f["name"] for f in load_current_schemas()["StaffChanged"]["fields"]}
    assert "email" in staff


def test_user_changed_round_trips_with_all_fields(codecs: Codecs) -> None:
    codec = codecs["UserChanged"]
    assert codec.decode(codec.encode(full_user())) == full_user()


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("variant", range(6))
def test_every_schema_round_trips(codecs: Codecs, subject: str, variant: int) -> None:
    codec = codecs[subject]
    record = sample_record(codecs.schemas[subject], variant)
    decoded = codec.decode(codec.encode(record))
    # Logical types come back as dates and datetimes; re-encoding must give the same bytes.
    assert codec.encode(decoded) == codec.encode(record)


def test_wire_format_is_magic_byte_and_schema_id(codecs: Codecs) -> None:
    data = codecs["UserChanged"].encode(full_user())
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == codecs["UserChanged"].schema_id


@pytest.mark.parametrize("subject", SUBJECTS)
def test_registered_versions_stay_readable_by_the_current_schema(subject: str) -> None:
    assert incompatibilities(FileRegistry(), subject, load_current_schemas()[subject]) == []


def test_current_schemas_are_all_registered() -> None:
    registry = FileRegistry()
    for subject, schema in load_current_schemas().items():
        assert registry.id_for(subject, schema) > 0


def test_the_compatibility_check_catches_breaking_edits() -> None:
    registry = FileRegistry()
    current = load_current_schemas()["UserChanged"]
    required = copy.deepcopy(current)
    required["fields"].append({"name": "loyalty_tier", "type": "string"})
    assert incompatibilities(registry, "UserChanged", required)
    narrowed = copy.deepcopy(current)
    user_type = next(f for f in narrowed["fields"] if f["name"] == "user_type")
    user_type["type"]["symbols"] = ["PROSPECT", "MEMBER"]
    assert incompatibilities(registry, "UserChanged", narrowed)
    widened = copy.deepcopy(current)
    widened["fields"].append({"name": "loyalty_tier", "type": ["null", "string"], "default": None})
    assert incompatibilities(registry, "UserChanged", widened) == []


def test_an_unregistered_edit_is_refused_with_a_hint(tmp_path: Path) -> None:
    current = copy.deepcopy(load_current_schemas()["UserChanged"])
    current["fields"].append({"name": "nickname", "type": ["null", "string"], "default": None})
    codec = AvroCodec("UserChanged", current, FileRegistry())
    with pytest.raises(SchemaNotRegisteredError, match="connector schemas register"):
        codec.encode(full_user(nickname=None))


def test_a_new_version_registers_with_a_new_stable_id_and_old_data_still_decodes(
    tmp_path: Path, codecs: Codecs
) -> None:
    import shutil

    from streams.avro.schemas import schemas_dir

    shutil.copytree(schemas_dir(), tmp_path / "schemas")
    registry = FileRegistry(tmp_path / "schemas")
    old_bytes = codecs["UserChanged"].encode(full_user())
    newer = copy.deepcopy(load_current_schemas()["UserChanged"])
    newer["fields"].append({"name": "nickname", "type": ["null", "string"], "default": None})
    new_id = registry.register("UserChanged", newer)
    assert new_id == max(v.id for v in FileRegistry().versions()) + 1
    assert registry.register("UserChanged", newer) == new_id  # idempotent
    reopened = FileRegistry(tmp_path / "schemas")
    codec = AvroCodec("UserChanged", newer, reopened)
    assert codec.decode(old_bytes) == {**full_user(), "nickname": None}
    assert codec.decode(codec.encode({**full_user(), "nickname": "P"}))["nickname"] == "P"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"garbage that is not avro at all",
        b"\x07\x00\x00\x00\x02abc",
        bytes(range(256)),
    ],
    ids=["empty", "one-byte", "ascii-garbage", "bad-magic", "binary-garbage"],
)
def test_garbage_raises_the_decode_error(codecs: Codecs, data: bytes) -> None:
    with pytest.raises(RecordDecodeError):
        codecs["UserChanged"].decode(data)


def test_a_truncated_record_raises_the_decode_error(codecs: Codecs) -> None:
    data = codecs["UserChanged"].encode(full_user())
    for cut in (6, len(data) // 2, len(data) - 1):
        with pytest.raises(RecordDecodeError):
            codecs["UserChanged"].decode(data[:cut])


def test_trailing_bytes_raise_the_decode_error(codecs: Codecs) -> None:
    with pytest.raises(RecordDecodeError, match="trailing"):
        codecs["UserChanged"].decode(codecs["UserChanged"].encode(full_user()) + b"\x00")


def test_an_unknown_schema_id_raises_the_decode_error(codecs: Codecs) -> None:
    data = bytearray(codecs["UserChanged"].encode(full_user()))
    data[1:5] = struct.pack(">I", 99_999)
    with pytest.raises(UnknownSchemaError, match="99999"):
        codecs["UserChanged"].decode(bytes(data))
    assert issubclass(UnknownSchemaError, RecordDecodeError)


def test_decode_errors_are_never_fastavro_errors(codecs: Codecs) -> None:
    data = codecs["UserChanged"].encode(full_user())
    for cut in range(5, len(data)):
        try:
            codecs["UserChanged"].decode(data[:cut])
        except RecordDecodeError as exc:
            assert type(exc).__module__ == "streams.exceptions"

"""Turn-up validation, the TenantConfigured round trip, secret resolution and directory updates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from streams.avro.codec import Codecs
from streams.avro.registry import FileRegistry
from streams.exceptions import ConfigurationError, RecordDecodeError, TurnupError
from streams.settings import KafkaSettings
from streams.tenancy.directory import TenantDirectory
from streams.tenancy.receivers import receiver_config_for
from streams.tenancy.secrets import SecretResolver
from streams.tenancy.tenant import (
    Connection,
    Tenant,
    rate_limit_of,
    tenant_from_record,
    tenant_to_record,
)
from streams.tenancy.turnup import load_turnup_file, validate_turnup
from tests.secret_values import TURNUP_UNIT_SECRET

SECRET = TURNUP_UNIT_SECRET
CODEC = Codecs(FileRegistry())["TenantConfigured"]


def turnup(**overrides: Any) -> Tenant:
    fields: dict[str, Any] = {
        "client_id": "100",
        "receiver_client_id": "R-100",
        "adapter": "reference",
        "clubs": [("7", "C7"), ("8", "C8")],
        "host": "127.0.0.1:8080",
        "scheme": "http",
        "username": "api",
        "secret_ref": "RECEIVER_100_PASSWORD",
        "base_path": "/api",
        "options": {"region": "eu"},
    }
    fields.update(overrides)
    return validate_turnup(**fields)


@pytest.fixture
def refused() -> Callable[..., str]:
    def check(**overrides: Any) -> str:
        with pytest.raises(TurnupError) as caught:
            turnup(**overrides)
        assert isinstance(caught.value, ConfigurationError)
        return str(caught.value)

    return check


# -- validation --------------------------------------------------------------------------------


def test_valid_turnup_becomes_a_tenant() -> None:
    tenant = turnup()
    assert tenant.clubs == {"7": "C7", "8": "C8"}
    club = tenant.club_ref("7")
    assert club is not None and club.receiver_club_id == "C7"
    assert tenant.club_ref("9") is None
    club = tenant.club_ref("8")
    assert club is not None and club.receiver_club_id == "C8"
    assert tenant.connection == Connection(
        "127.0.0.1:8080", "http", "api", "RECEIVER_100_PASSWORD", "/api"
    )
    assert tenant.configured_at.tzinfo is not None


def test_tenant_mappings_are_read_only() -> None:
    tenant = turnup()
    with pytest.raises(TypeError):
        tenant.clubs["9"] = "C9"  # type: ignore[index]


def test_unknown_adapter_lists_the_known_ones(refused: Callable[..., str]) -> None:
    message = refused(adapter="clubware")
    assert "unknown adapter 'clubware'" in message
    assert "reference" in message and "reference-save-only" in message


def test_club_mapped_twice(refused: Callable[..., str]) -> None:
    message = refused(clubs=[("7", "C7"), ("7", "C9")])
    assert "InTouch club 7 is mapped twice" in message


def test_receiver_club_used_twice(refused: Callable[..., str]) -> None:
    message = refused(clubs=[("7", "C7"), ("8", "C7")])
    assert "receiver club C7" in message and "7 and 8" in message


def test_no_clubs(refused: Callable[..., str]) -> None:
    assert "no clubs" in refused(clubs=[])


@pytest.mark.parametrize(
    ("host", "fix"),
    [
        ("http://x.example", "--scheme"),
        ("x.example/api", "--base-path"),
        ("x.example:0", "port must be"),
        ("x.example:99999", "port must be"),
        ("x.example:http", "port must be"),
        ("bad_host!", "not a host name"),
        ("", "host is empty"),
        ("::1", "brackets"),
    ],
)
def test_malformed_host(refused: Callable[..., str], host: str, fix: str) -> None:
    assert fix in refused(host=host)


def test_good_hosts() -> None:
    for host in ("api.example.com", "10.0.0.5:8443", "[::1]:8080", "localhost"):
        tenant = turnup(host=host)
        assert tenant.connection is not None and tenant.connection.host == host


def test_credentials_in_host_are_refused_without_echoing_them(
    refused: Callable[..., str],
) -> None:
    message = refused(host=f"api:{SECRET}@x.example")
    assert SECRET not in message
    assert "--secret-ref" in message


def test_scheme_must_be_http_or_https(refused: Callable[..., str]) -> None:
    assert "use http or https" in refused(scheme="ftp")


def test_auth_needing_adapter_without_secret_ref() -> None:
    # Every shipped profile accepts 'none'; a profile that does not must get a secret ref.
    from adapters.profile import ReceiverProfile
    from adapters.registry import ADAPTERS, register_profile
    from streams.tenancy.tenant import adapter_profile

    base = adapter_profile("reference")
    assert base is not None
    locked = ReceiverProfile.model_validate(
        {**base.model_dump(), "name": "test-locked", "auth": ["basic"]}
    )
    register_profile(locked, replace=True)
    try:
        with pytest.raises(TurnupError, match=r"needs auth \(basic\).*--secret-ref"):
            turnup(adapter="test-locked", username=None, secret_ref=None)
        with pytest.raises(TurnupError, match=r"basic auth only.*--username"):
            turnup(adapter="test-locked", username=None)
        assert turnup(adapter="test-locked").adapter == "test-locked"
    finally:
        ADAPTERS.pop("test-locked")


def test_username_without_secret_ref(refused: Callable[..., str]) -> None:
    assert "--username needs --secret-ref" in refused(secret_ref=None)


def test_connection_fields_without_host(refused: Callable[..., str]) -> None:
    assert "without --host" in refused(host=None)


def test_rest_adapter_needs_a_host(refused: Callable[..., str]) -> None:
    message = refused(host=None, username=None, secret_ref=None, base_path=None)
    assert "give --host" in message


def test_secret_ref_must_be_a_name_and_is_not_echoed(refused: Callable[..., str]) -> None:
    message = refused(secret_ref=SECRET)
    assert "RECEIVER_100_PASSWORD" in message  # the example of a good name
    assert SECRET not in message


def test_auth_option_must_be_accepted_by_the_adapter(refused: Callable[..., str]) -> None:
    assert "takes none, basic, bearer, api_key" in refused(options={"auth": "oauth"})
    assert "auth=basic needs --username" in refused(username=None, options={"auth": "basic"})


def test_empty_ids_are_refused(refused: Callable[..., str]) -> None:
    assert "client ID is empty" in refused(client_id=" ")
    assert "receiver club ID of InTouch club 7 is empty" in refused(clubs=[("7", "")])


def test_base_path_is_normalized_and_checked(refused: Callable[..., str]) -> None:
    tenant = turnup(base_path="api/v1/")
    assert tenant.connection is not None and tenant.connection.base_path == "/api/v1"
    assert "no query" in refused(base_path="/api?x=1")


# -- turn-up files ------------------------------------------------------------------------------


def test_turnup_file(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "client_id: 100\n"
        "receiver_client_id: R-100\n"
        "adapter: reference\n"
        "clubs: {7: C7, 8: C8}\n"
        "connection: {host: '127.0.0.1:8080', scheme: http, username: api,"
        " secret_ref: RECEIVER_100_PASSWORD}\n"
        "options: {region: eu}\n"
    )
    tenant = load_turnup_file(path)
    assert tenant.client_id == "100"
    assert tenant.clubs == {"7": "C7", "8": "C8"}
    assert tenant.options == {"region": "eu"}


def test_turnup_file_refuses_a_club_given_twice(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "client_id: 100\nreceiver_client_id: R\nadapter: reference\n"
        "clubs:\n  7: C7\n  7: C9\nconnection: {host: x}\n"
    )
    with pytest.raises(TurnupError, match="line 6: 7 is given twice"):
        load_turnup_file(path)


def test_turnup_file_refuses_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "client_id: 100\nreceiver_client_id: R\nadapter: reference\nclubs: [7=C7]\n"
        "connection: {host: x, password: hunter2}\n"
    )
    with pytest.raises(TurnupError, match="unknown field\\(s\\) \\['password'\\]"):
        load_turnup_file(path)


# -- the record --------------------------------------------------------------------------------


def test_record_round_trip_through_avro() -> None:
    tenant = turnup()
    assert tenant_from_record(CODEC.decode(CODEC.encode(tenant_to_record(tenant)))) == tenant


def test_saas_tenant_round_trips_without_connection() -> None:
    tenant = Tenant(
        "200",
        "R-200",
        "reference",
        {"1": "A"},
        None,
        {},
        dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC),
    )
    record = tenant_to_record(tenant)
    assert record["connection"] is None
    assert tenant_from_record(CODEC.decode(CODEC.encode(record))) == tenant


def test_record_carries_the_ref_not_the_secret() -> None:
    encoded = CODEC.encode(tenant_to_record(turnup()))
    assert b"RECEIVER_100_PASSWORD" in encoded
    assert SECRET.encode() not in encoded


# -- secrets -----------------------------------------------------------------------------------


def test_secret_from_environment(tmp_path: Path) -> None:
    (tmp_path / "RECEIVER_X").write_text("from-file")
    resolver = SecretResolver(tmp_path, environ={"RECEIVER_X": SECRET})
    assert resolver.resolve("RECEIVER_X").get_secret_value() == SECRET


def test_secret_from_file_is_stripped(tmp_path: Path) -> None:
    (tmp_path / "RECEIVER_X").write_text(f"  {SECRET}\n")
    resolver = SecretResolver(tmp_path, environ={})
    secret = resolver.resolve("RECEIVER_X")
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == SECRET
    assert SECRET not in repr(secret) and SECRET not in str(secret)


def test_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SecretResolver(tmp_path, environ={}).resolve("RECEIVER_X")
    message = str(caught.value)
    assert "RECEIVER_X" in message
    assert "environment variable RECEIVER_X" in message
    assert str(tmp_path / "RECEIVER_X") in message


def test_missing_secret_without_secrets_dir() -> None:
    with pytest.raises(ConfigurationError, match="CONNECTOR_SECRETS_DIR is unset"):
        SecretResolver(None, environ={}).resolve("RECEIVER_X")


def test_empty_secret_file_is_missing(tmp_path: Path) -> None:
    (tmp_path / "RECEIVER_X").write_text("\n")
    with pytest.raises(ConfigurationError, match="\\(empty\\)"):
        SecretResolver(tmp_path, environ={}).resolve("RECEIVER_X")


def test_secret_ref_cannot_escape_the_secrets_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must be a name"):
        SecretResolver(tmp_path, environ={}).resolve("../etc/passwd")


def test_receiver_config_resolves_the_secret_and_masks_it() -> None:
    resolver = SecretResolver(None, environ={"RECEIVER_100_PASSWORD": SECRET})
    config = receiver_config_for(turnup(), resolver)
    assert config.base_url == "http://127.0.0.1:8080/api"
    assert config.receiver_client_id == "R-100"
    assert config.auth.kind == "basic" and config.auth.username == "api"
    assert config.auth.secret is not None and config.auth.secret.get_secret_value() == SECRET
    assert config.options == {"region": "eu"}
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())
    assert SECRET not in repr(resolver)


def test_receiver_config_auth_variants() -> None:
    resolver = SecretResolver(None, environ={"RECEIVER_100_PASSWORD": SECRET})
    assert receiver_config_for(turnup(username=None), resolver).auth.kind == "bearer"
    api_key = turnup(username=None, options={"auth": "api_key"})
    config = receiver_config_for(api_key, resolver)
    assert config.auth.kind == "api_key" and "auth" not in config.options
    open_access = turnup(username=None, secret_ref=None)
    assert receiver_config_for(open_access, resolver).auth.kind == "none"


def test_receiver_config_with_missing_secret_names_the_ref_only() -> None:
    with pytest.raises(ConfigurationError, match="secret RECEIVER_100_PASSWORD not found"):
        receiver_config_for(turnup(), SecretResolver(None, environ={}))


def test_tenant_repr_holds_no_secret() -> None:
    assert SECRET not in repr(turnup())


# -- directory ----------------------------------------------------------------------------------


@pytest.fixture
def directory() -> TenantDirectory:
    # Never started: `apply` is the whole state machine, the thread only feeds it.
    return TenantDirectory("127.0.0.1:9", KafkaSettings(), "tenants", codec=CODEC)


def encoded(tenant: Tenant) -> bytes:
    return CODEC.encode(tenant_to_record(tenant))


def test_directory_applies_latest_value_and_tombstones(directory: TenantDirectory) -> None:
    first = turnup()
    second = turnup(clubs=[("7", "C77")])
    other = turnup(client_id="200")
    assert directory.version == 0
    assert directory.apply(b"100", encoded(first)) is True
    assert directory.apply(b"200", encoded(other)) is True
    assert directory.get("100") == first
    assert directory.version == 2
    assert directory.apply(b"100", encoded(second)) is True
    assert directory.get("100") == second
    assert directory.version == 3
    assert directory.apply(b"100", encoded(second)) is False  # same value: no change
    assert directory.version == 3
    assert directory.apply(b"100", None) is True
    assert directory.get("100") is None
    assert [t.client_id for t in directory.all()] == ["200"]
    assert directory.version == 4
    assert directory.apply(b"100", None) is False  # tombstone of an unknown client
    assert directory.version == 4


def test_directory_refuses_undecodable_records(directory: TenantDirectory) -> None:
    with pytest.raises(RecordDecodeError):
        directory.apply(b"100", b"not avro")
    with pytest.raises(RecordDecodeError, match="without a key"):
        directory.apply(None, encoded(turnup()))
    with pytest.raises(RecordDecodeError, match="under key '999'"):
        directory.apply(b"999", encoded(turnup()))
    assert directory.all() == [] and directory.version == 0


def test_directory_wait_before_start_is_a_clear_error(directory: TenantDirectory) -> None:
    with pytest.raises(Exception, match="not running: call start\\(\\) first"):
        directory.wait_until_current(0.1)


@pytest.mark.parametrize("limit", ["0", "-2", "fast", "nan-ish"])
def test_a_rate_limit_is_a_positive_number_of_calls_a_second(
    refused: Callable[..., str], limit: str
) -> None:
    assert "rate_limit" in refused(options={"rate_limit": limit})


def test_a_rate_limit_is_the_connectors_not_the_adapters() -> None:
    tenant = turnup(options={"rate_limit": "2.5", "region": "eu"})
    assert rate_limit_of(tenant) == 2.5
    resolver = SecretResolver(None, environ={"RECEIVER_100_PASSWORD": SECRET})
    config = receiver_config_for(tenant, resolver)
    assert dict(config.options) == {"region": "eu"}

"""Declared custom options, secrets given by reference, and full-SaaS tenants (no host)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import registry
from adapters.errors import ProfileError
from adapters.profile import load_profile
from streams.exceptions import TurnupError
from streams.tenancy.receivers import open_receiver, receiver_config_for
from streams.tenancy.secrets import SecretResolver
from streams.tenancy.tenant import Tenant, tenant_from_record, tenant_to_json, tenant_to_record
from streams.tenancy.turnup import validate_turnup
from tests.secret_values import TURNUP_UNIT_SECRET

PROFILE = """\
name: {name}
auth: [none, bearer]
{extra}
options:
  - name: site_code
    type: integer
    required: true
  - name: send_welcome_mail
    type: boolean
    default: false
  - name: webhook_password
    secret: true
calls:
  save_prospect:
    method: POST
    path: /people
    body: {{first_name: first, last_name: last, receiver_id: id}}
    id_path: id
"""


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "optioned.yaml"
    path.write_text(PROFILE.format(name="optioned-test", extra=""))
    registry.register_profile(load_profile(path))
    yield "optioned-test"
    for table in (registry.ADAPTERS, registry.OPTIONS, registry.BASE_URLS):
        table.pop("optioned-test", None)


def turnup(adapter: str, options: dict[str, Any], **more: Any) -> Tenant:
    fields: dict[str, Any] = {
        "client_id": "100",
        "receiver_client_id": "R-100",
        "adapter": adapter,
        "clubs": [("7", "C7")],
        "host": "127.0.0.1:8080",
        "scheme": "http",
        "options": options,
    }
    fields.update(more)
    return validate_turnup(**fields)


def refusal(adapter: str, options: dict[str, Any]) -> str:
    with pytest.raises(TurnupError) as caught:
        turnup(adapter, options)
    return str(caught.value)


# -- seen case 5: options are declared, secrets only by reference ---------------------------------


def test_a_password_option_on_the_reference_adapter_is_refused_not_published() -> None:
    # On main this was accepted and later printed by `tenants show`.
    message = refusal("reference", {"password": TURNUP_UNIT_SECRET})
    assert "adapter 'reference' has no option(s) ['password']; it declares: region" in message
    assert TURNUP_UNIT_SECRET not in message


def test_unknown_options_are_refused_with_the_declared_ones(adapter: str) -> None:
    message = refusal(adapter, {"site_code": "3", "colour": "red"})
    assert "has no option(s) ['colour']" in message
    assert "send_welcome_mail, site_code, webhook_password" in message


def test_missing_required_and_mistyped_options_are_refused(adapter: str) -> None:
    assert "requires option(s) ['site_code']" in refusal(adapter, {})
    assert "site_code: 'three' is not an integer" in refusal(adapter, {"site_code": "three"})
    bad_flag = refusal(adapter, {"site_code": "3", "send_welcome_mail": "perhaps"})
    assert "send_welcome_mail: 'perhaps' is not a boolean" in bad_flag


def test_a_secret_option_refuses_its_value_and_never_echoes_it(adapter: str) -> None:
    message = refusal(adapter, {"site_code": "3", "webhook_password": TURNUP_UNIT_SECRET})
    assert "webhook_password is a secret: give it by reference" in message
    assert TURNUP_UNIT_SECRET not in message


def test_a_secret_option_by_reference_is_recorded_as_the_name_and_resolved_by_workers(
    adapter: str,
) -> None:
    tenant = turnup(adapter, {"site_code": "3", "webhook_password": "secret:HOOK_PASSWORD"})
    assert tenant_to_record(tenant)["options"]["webhook_password"] == "secret:HOOK_PASSWORD"
    assert "secret:HOOK_PASSWORD" in str(tenant_to_json(tenant))
    resolver = SecretResolver(None, environ={"HOOK_PASSWORD": TURNUP_UNIT_SECRET})
    config = receiver_config_for(tenant, resolver)
    assert config.options == {"site_code": 3, "send_welcome_mail": False}
    assert config.secrets["webhook_password"].get_secret_value() == TURNUP_UNIT_SECRET
    assert TURNUP_UNIT_SECRET not in repr(config)


def test_connector_options_stay_the_connectors(adapter: str) -> None:
    tenant = turnup(adapter, {"site_code": "3", "rate_limit": "2"})
    assert tenant.options == {"site_code": "3", "rate_limit": "2"}
    assert "rate_limit" not in receiver_config_for(tenant, SecretResolver(None)).options


def test_profile_option_declarations_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = PROFILE.format(name="bad", extra="").replace(
        "    secret: true", "    secret: true\n    default: hunter"
    )
    path.write_text(text)
    with pytest.raises(ProfileError, match="a secret option has no default"):
        load_profile(path)


# -- seen case 6: a full-SaaS tenant (no host) turns up and opens --------------------------------


@pytest.fixture
def saas(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "saas.yaml"
    base = "base_url: https://api.platform.test/v2"
    path.write_text(PROFILE.format(name="saas-test", extra=base))
    registry.register_profile(load_profile(path))
    yield "saas-test"
    for table in (registry.ADAPTERS, registry.OPTIONS, registry.BASE_URLS):
        table.pop("saas-test", None)


def test_a_full_saas_tenant_without_host_opens_at_the_platforms_address(saas: str) -> None:
    tenant = turnup(saas, {"site_code": "1"}, host=None, scheme="https")
    assert tenant.connection is None

    async def opened() -> str:
        client = open_receiver(tenant, SecretResolver(None))
        async with client:
            return repr(client)

    assert "https://api.platform.test/v2" in asyncio.run(opened())


def test_a_full_saas_tenant_carries_credentials_without_a_host(
    saas: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = turnup(saas, {"site_code": "1"}, host=None, scheme="https", secret_ref="SAAS_TOKEN")
    assert tenant.connection is not None and tenant.connection.host is None
    assert tenant.connection.secret_ref == "SAAS_TOKEN"
    assert tenant_from_record(tenant_to_record(tenant)) == tenant  # the record carries it
    monkeypatch.setenv("SAAS_TOKEN", "t0ken-saas")
    config = receiver_config_for(tenant, SecretResolver(None))
    assert (config.scheme, config.host, config.base_path) == ("https", "api.platform.test", "/v2")
    assert config.auth.kind == "bearer"
    assert config.auth.secret is not None
    assert config.auth.secret.get_secret_value() == "t0ken-saas"


def test_a_saas_tenant_takes_no_base_path_without_a_host(saas: str) -> None:
    with pytest.raises(TurnupError, match="without --host"):
        turnup(saas, {"site_code": "1"}, host=None, secret_ref="SAAS_TOKEN", base_path="/x")


def test_a_self_hosted_profile_still_needs_a_host(adapter: str) -> None:
    with pytest.raises(TurnupError, match="give --host"):
        turnup(adapter, {"site_code": "1"}, host=None)

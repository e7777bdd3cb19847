"""`connector turnup` refuses a password given as an option: exit 2, not echoed, not published."""

from __future__ import annotations

import pytest

from tests.integration.harness import connector
from tests.integration.tenancy.test_turnup import raw_records
from tests.secret_values import TURNUP_SECRET

pytestmark = pytest.mark.integration


def test_a_password_option_is_refused_and_never_published(
    test_env: dict[str, str], unique: str, kafka_bootstrap: str
) -> None:
    created = connector(test_env, "topics", "ensure")
    assert created.returncode == 0, created.stderr
    args = ["turnup", "--client", "100", "--receiver-client", "R-100", "--club", "7=C7"]
    args += ["--adapter", "reference", "--host", "127.0.0.1:8080", "--scheme", "http"]
    refused = connector(test_env, *args, "--option", f"password={TURNUP_SECRET}")
    assert refused.returncode == 2
    assert "has no option(s) ['password']; it declares: region" in refused.stderr
    assert TURNUP_SECRET not in refused.stderr + refused.stdout
    assert raw_records(kafka_bootstrap, f"t{unique}.connector.tenants.v1") == []

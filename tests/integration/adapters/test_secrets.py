"""Credentials never show in exception text, reprs or logs, whatever the auth kind."""

from __future__ import annotations

import base64
import logging

import pytest
from pydantic import SecretStr

from adapters.errors import MisconfiguredError
from adapters.reference import ReferenceAuth
from adapters.registry import create_adapter
from tests.integration.adapters.receivers import CLIENT, CLUB, person, run, serving
from tests.secret_values import ADAPTER_RIGHT_SECRET, ADAPTER_WRONG_SECRET

RIGHT = ADAPTER_RIGHT_SECRET
WRONG = ADAPTER_WRONG_SECRET


def leaked_forms(secret: str) -> list[str]:
    """The secret as given, and as it travels in a Basic header."""
    return [secret, base64.b64encode(f"connector:{secret}".encode()).decode()]


@pytest.mark.parametrize("kind", ["basic", "bearer", "api_key"])
def test_secrets_stay_out_of_errors_reprs_and_logs(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []

    async def scenario() -> None:
        auth = ReferenceAuth.model_validate({"kind": kind, "secret": RIGHT})
        async with serving(auth=auth) as (receiver, client):
            await client.create_prospect(CLUB, person())
            await client.list_staff(None)
            good_config = receiver.receiver_config(CLIENT)
            texts.extend([repr(client), repr(good_config), str(good_config)])
            texts.append(good_config.model_dump_json())
            wrong_auth = good_config.auth.model_copy(update={"secret": SecretStr(WRONG)})
            bad_config = receiver.receiver_config(CLIENT, auth=wrong_auth)
            async with create_adapter("reference", bad_config) as bad:
                with pytest.raises(MisconfiguredError) as caught:
                    await bad.create_prospect(CLUB, person())
                texts.extend([repr(bad), repr(bad_config), str(bad_config)])
            error: BaseException | None = caught.value
            while error is not None:
                texts.extend([str(error), repr(error)])
                error = error.__cause__ or error.__context__

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    texts.append(caplog.text)
    texts.extend(repr(record.__dict__) for record in caplog.records)
    assert any("create_prospect" in text or "HTTP 401" in text for text in texts)
    for text in texts:
        for secret in leaked_forms(RIGHT) + leaked_forms(WRONG):
            assert secret not in text

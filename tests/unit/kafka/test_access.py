"""Which librdkafka errors of a secured cluster become our one line, and what it says."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import KafkaError
from pydantic import SecretStr

from streams.kafka.clients import access_refusal, check_access
from streams.kafka.secure import SecureMaterial
from streams.settings import KafkaSettings

SECURED = KafkaSettings.model_construct(
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="connector",
    sasl_password=SecretStr("hunter2-secret"),
    ssl_cafile=Path("/etc/kafka-ca/ca.crt"),
)


def test_a_refused_sasl_login_names_the_broker_user_and_mechanism() -> None:
    error = KafkaError(
        KafkaError._AUTHENTICATION,
        "sasl_ssl://broker-1:9093/bootstrap: SASL authentication error: Authentication "
        "failed during authentication due to invalid credentials with SASL mechanism "
        "SCRAM-SHA-512 (after 386ms in state AUTH_REQ)",
    )
    assert access_refusal(error, "broker-1:9093,broker-2:9093", SECURED) == (
        "Kafka at broker-1:9093 refused the SASL login for user 'connector' (SCRAM-SHA-512): "
        "check KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"
    )


def test_an_unverified_certificate_names_the_ca_file() -> None:
    error = KafkaError(
        KafkaError._SSL,
        "sasl_ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL "
        "routines::certificate verify failed: broker certificate could not be verified",
    )
    line = access_refusal(error, "127.0.0.1:9093", SECURED)
    assert line == (
        "TLS to 127.0.0.1:9093 failed: the broker's certificate is not signed by "
        "KAFKA_SSL_CAFILE=/etc/kafka-ca/ca.crt"
    )
    system = SECURED.model_copy(update={"ssl_cafile": None})
    assert "the system's CAs (set KAFKA_SSL_CAFILE)" in str(access_refusal(error, "x:1", system))


def test_other_errors_are_not_a_refusal() -> None:
    for code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT):
        assert access_refusal(KafkaError(code, "1/1 brokers are down"), "h:1", SECURED) is None


def test_a_plaintext_cluster_is_not_checked() -> None:
    check_access("127.0.0.1:1", KafkaSettings.model_construct())  # no client, no wait


def test_the_exports_read_the_password_from_its_file(tmp_path: Path) -> None:
    material = SecureMaterial(tmp_path / "tls")
    exports = material.exports("127.0.0.1:9093")
    assert f'export KAFKA_SASL_PASSWORD="$(cat {material.password_file})"' in exports
    assert f"export KAFKA_SSL_CAFILE={material.ca_pem}" in exports

"""Typed settings of the connector, each declared once with its env name and default."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "intouch-connector"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "intouch-connector"
#: How long a consumer group waits for its members to rejoin in a rebalance (the worker's
#: Faust `broker_rebalance_timeout`; Faust's default).
REBALANCE_TIMEOUT_S = 60.0


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster; SASL/TLS pass through to both Kafka clients."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"),
        description="Existing cluster to use; unset means the local broker (`connector kafka up`).",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL")
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_MECHANISM")
    )
    sasl_username: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_USERNAME")
    )
    sasl_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_SASL_PASSWORD")
    )
    ssl_cafile: Path | None = Field(default=None, validation_alias=AliasChoices("KAFKA_SSL_CAFILE"))
    consumer_config: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("KAFKA_CONSUMER_CONFIG"),
        description="Extra librdkafka settings (JSON) for the worker's readers: the link "
        'follower and the tenant directory, e.g. {"fetch.max.bytes": 104857600}.',
    )

    def librdkafka_config(
        self, bootstrap: str, *, plaintext_secrets: bool = False
    ) -> dict[str, str | int | float | bool]:
        """Settings for confluent-kafka; the password is masked unless asked for in plain text."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = (
                self.sasl_password.get_secret_value() if plaintext_secrets else "**********"
            )
        if self.ssl_cafile:
            conf["ssl.ca.location"] = str(self.ssl_cafile)
        return conf

    def faust_broker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `faust.App` carrying the same security settings."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        import ssl

        import faust

        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.security_protocol.startswith("SASL"):
            password = self.sasl_password.get_secret_value() if self.sasl_password else ""
            credentials = faust.SASLCredentials(
                username=self.sasl_username or "",
                password=password,
                mechanism=self.sasl_mechanism or "PLAIN",
                ssl_context=context if self.security_protocol == "SASL_SSL" else None,
            )
            return {"broker_credentials": credentials}
        return {"broker_credentials": faust.SSLCredentials(context)}


class TopicSettings(BaseSettings):
    """Topic names and partition counts (DESIGN.md, 'The flow')."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", extra="ignore", frozen=True)

    topic_prefix: str = Field(default="", description="Prepended to every topic name.")
    users_topic: str = "intouch.users.v1"
    staff_topic: str = "intouch.staff.v1"
    lead_sources_topic: str = "intouch.lead-sources.v1"
    commands_topic: str = "connector.commands.v1"
    outcomes_topic: str = "connector.outcomes.v1"
    dlq_topic: str = "connector.dlq.v1"
    parked_topic: str = "connector.parked.v1"
    replay_topic: str = "connector.replay.v1"
    tenants_topic: str = "connector.tenants.v1"
    links_topic: str = "connector.links.v1"
    inbound_partitions: int = Field(default=6, ge=1)
    commands_partitions: int = Field(default=6, ge=1)
    outcomes_partitions: int = Field(default=6, ge=1)
    dlq_partitions: int = Field(default=3, ge=1)
    tenants_partitions: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    inbound_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    dlq_retention_ms: int = Field(default=30 * 24 * 3600 * 1000, ge=-1)

    def name(self, base: str) -> str:
        return f"{self.topic_prefix}{base}"


class LocalKafkaSettings(BaseSettings):
    """The single-node broker that `connector kafka up` starts on loopback."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", extra="ignore", frozen=True)

    kafka_version: str = Field(default="4.1.1", description="Pinned in deploy/kafka/.")
    state_dir: Path = Field(default=DEFAULT_STATE_DIR, description="Broker data, logs, pid file.")
    cache_dir: Path = Field(default=DEFAULT_CACHE_DIR, description="Verified Kafka jars.")
    kafka_port: int | None = Field(default=None, description="Broker port; unset picks a free one.")
    kafka_heap: str = Field(default="512m", description="JVM heap of the local broker.")
    kafka_start_timeout: float = Field(default=90.0, gt=0)


class RegistrySettings(BaseSettings):
    """Where Avro schema IDs come from."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    schema_registry_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL")
    )


class PipelineSettings(BaseSettings):
    """Tuning of the planner and sink agents."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", extra="ignore", frozen=True)

    sink_max_in_flight: int = Field(
        default=64, ge=1, description="Commands run at once per worker."
    )
    sink_tenant_max_in_flight: int = Field(
        default=16, ge=1, description="Commands run at once per worker for one tenant."
    )
    sink_max_queued: int = Field(
        default=4096, ge=1, description="Commands a worker holds, queued or running."
    )
    retry_max_attempts: int = Field(
        default=6, ge=1, description="Calls per command, first included."
    )
    retry_base_delay: float = Field(default=0.2, gt=0, description="First backoff, seconds.")
    retry_max_delay: float = Field(default=10.0, gt=0, description="Longest single backoff.")
    retry_max_elapsed: float = Field(default=60.0, gt=0, description="Give up after this long.")
    session_timeout: float = Field(
        default=15.0, gt=0, description="Seconds before a silent worker's partitions move."
    )
    staff_cache_ttl: float = Field(default=30.0, ge=0, description="Staff list cache per client.")
    receiver_timeout: float = Field(
        default=15.0,
        gt=0,
        # A revocation waits for a create under way: at the group's rebalance timeout (Faust's
        # 60 s) the worker would be dropped from its group every time a receiver is that slow.
        lt=REBALANCE_TIMEOUT_S,
        description="Seconds a receiver request may take, from asking for a connection to the "
        "last byte of its answer (and so the longest wait for any byte); under the group's "
        "rebalance timeout (60 s), which a rebalance waiting for a create must not outlast.",
    )
    reconcile_grace: float = Field(
        default=5.0,
        ge=0,
        description="Seconds past a call's timeout that a receiver may still apply it: an "
        "unknown outcome is looked up only after the timeout and this grace.",
    )
    breaker_failures: int = Field(
        default=5,
        ge=1,
        description="Failed receiver calls of a tenant in a row that open its breaker.",
    )
    breaker_cooldown: float = Field(
        default=30.0, gt=0, description="Seconds an open breaker waits before a probe (doubles)."
    )
    park_budget: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Seconds a command may stay parked before it is dead-lettered.",
    )
    publish_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds to keep retrying an outcome or dead-letter write before the "
        "worker stops (exit 75) rather than lose or skip it.",
    )
    producer_linger_ms: float = Field(
        default=2.0,
        ge=0,
        description="Milliseconds the worker's producer waits to fill a batch before it "
        "sends (commands, outcomes, dead letters): fewer requests, a little more latency.",
    )
    startup_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a starting worker waits for Kafka to answer (a broker "
        "restarting, say) before it exits.",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port."
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address of the metrics server.")
    lag_interval: float = Field(
        default=15.0,
        ge=0,
        description="Seconds between samples of the worker group's lag for /metrics (0: none).",
    )
    secrets_dir: Path | None = Field(
        default=None, description="Folder of secret files, one per secret reference."
    )
    data_dir: Path = Field(
        default=DEFAULT_STATE_DIR / "worker", description="RocksDB link store of the worker."
    )


class Settings(BaseSettings):
    """Everything the connector reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", extra="ignore", frozen=True)

    app_id: str = Field(default="intouch-connector", description="Faust app id and group prefix.")
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="Worker logs as plain text or one JSON object a line."
    )

    @cached_property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings()

    @cached_property
    def topics(self) -> TopicSettings:
        return TopicSettings()

    @cached_property
    def local_kafka(self) -> LocalKafkaSettings:
        return LocalKafkaSettings()

    @cached_property
    def pipeline(self) -> PipelineSettings:
        return PipelineSettings()

    @cached_property
    def registry(self) -> RegistrySettings:
        return RegistrySettings()

    def validate_all(self) -> None:
        """Read every group now, so a bad value fails before any command starts work
        (a broker, a consumer) rather than when its group is first used."""
        _ = (self.kafka, self.topics, self.local_kafka, self.pipeline, self.registry)

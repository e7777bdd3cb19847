"""The one place confluent-kafka clients are built, and where their errors become ours."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from streams.exceptions import (
    ConfigurationError,
    KafkaAccessError,
    KafkaClientError,
    KafkaTimeoutError,
)
from streams.settings import KafkaSettings

Config = Mapping[str, str | int | float | bool | Any]

#: Error codes that mean "ask again in a moment": a new topic's leader is not elected yet.
NO_LEADER_YET = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        # A broker restarting: its connection is torn down under a request, or none is up,
        # or the client's metadata does not have the partition again yet.
        KafkaError._DESTROY_BROKER,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._UNKNOWN_PARTITION,
    }
)

TOPIC_ALREADY_EXISTS = KafkaError.TOPIC_ALREADY_EXISTS

#: Every producer of ours: acknowledged by all replicas, no duplicates on retry, and keys
#: partitioned with murmur2 like the Java client and aiokafka (Faust), so co-partitioning holds.
PRODUCER_DEFAULTS: Config = {
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
}

#: Every consumer of ours reads on its own terms: no offsets committed behind its back.
CONSUMER_DEFAULTS: Config = {"enable.auto.commit": False}


class RepeatFilter(logging.Filter):
    """librdkafka repeats a failing connection's line many times a second (hundreds in 30 s
    against a closed port). The first line of a kind passes; then one every `interval`
    seconds at most, saying how many like it were held back."""

    def __init__(self, interval: float = 30.0) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        kind = re.sub(r"\d+", "#", text)[:300]
        now = time.monotonic()
        last, held = self._seen.get(kind, (None, 0))
        if last is not None and now - last < self.interval:
            self._seen[kind] = (last, held + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[kind] = (now, 0)
        if held and last is not None:
            record.msg, record.args = f"{text} ({held} more like it in {now - last:.0f}s)", None
        return True


#: librdkafka lines about a condition it retries through by itself, right after a broker
#: starts: shown only when the "librdkafka" logger is at DEBUG.
TRANSIENT = ("Coordinator load in progress",)


class TransientFilter(logging.Filter):
    """Holds back lines of TRANSIENT unless their logger is enabled for DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return True
        text = record.getMessage()
        return not any(marker in text for marker in TRANSIENT)


#: Where librdkafka's own log lines go (instead of straight to stderr), repeats held back.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
LIBRDKAFKA_LOG.addFilter(TransientFilter())
LIBRDKAFKA_LOG.addFilter(RepeatFilter())


def _config(
    bootstrap: str, kafka: KafkaSettings, defaults: Config, config: Config | None
) -> dict[str, Any]:
    return {
        "logger": LIBRDKAFKA_LOG,
        **kafka.librdkafka_config(bootstrap, plaintext_secrets=True),
        **defaults,
        **(config or {}),
    }


#: Seconds a secured client's first connection gets to show whether the cluster takes our
#: login and whether its certificate is trusted (a refusal comes in well under a second).
ACCESS_CHECK_TIMEOUT = 10.0
_access_granted: set[str] = set()
#: The access check's own client says nothing: what matters comes through its `error_cb`.
_ACCESS_LOG = logging.getLogger("streams.kafka.clients.access")
_ACCESS_LOG.addHandler(logging.NullHandler())
_ACCESS_LOG.propagate = False


def check_access(
    bootstrap: str, kafka: KafkaSettings, timeout: float = ACCESS_CHECK_TIMEOUT
) -> None:
    """Raise `KafkaAccessError` at once when a secured cluster refuses our SASL login or TLS
    to it fails, rather than let every client retry and log it until its own timeout.

    librdkafka reports both only through `error_cb`, served by `poll()`, while a blocking
    call waits out its timeout; so ask in short slices and look in between. Once per
    process and settings; an unreachable broker is left to the caller's own call to report.
    """
    if kafka.security_protocol == "PLAINTEXT":
        return
    conf = kafka.librdkafka_config(bootstrap, plaintext_secrets=True)
    key = hashlib.sha256(repr(sorted(conf.items())).encode()).hexdigest()
    if key in _access_granted:
        return
    errors: list[KafkaError] = []
    options: dict[str, Any] = {**conf, "logger": _ACCESS_LOG, "error_cb": errors.append}
    with kafka_errors(f"cannot create an admin client for {bootstrap}"):
        client = AdminClient(options)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.list_topics(timeout=0.3)
        except KafkaException:
            pass
        else:
            _access_granted.add(key)
            return
        client.poll(0)
        for error in errors:
            refusal = access_refusal(error, bootstrap, kafka)
            if refusal:
                raise KafkaAccessError(refusal)
        if any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors):
            return


def access_refusal(error: KafkaError, bootstrap: str, kafka: KafkaSettings) -> str | None:
    """The one line to show for a refused login or a failed TLS handshake; None otherwise."""
    text = error.str()
    found = re.search(r"://([^/\s]+)/", text)
    where = found.group(1) if found else bootstrap.split(",")[0]
    if error.code() == KafkaError._AUTHENTICATION and "SASL" in text:
        return (
            f"Kafka at {where} refused the SASL login for user {kafka.sasl_username!r} "
            f"({kafka.sasl_mechanism}): check KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"
        )
    if error.code() == KafkaError._SSL or "SSL handshake failed" in text:
        if "certificate verify failed" in text:
            trusted = (
                f"KAFKA_SSL_CAFILE={kafka.ssl_cafile}"
                if kafka.ssl_cafile
                else "the system's CAs (set KAFKA_SSL_CAFILE)"
            )
            return f"TLS to {where} failed: the broker's certificate is not signed by {trusted}"
        detail = text.split(": ", 1)[-1]
        return f"TLS to {where} failed: {detail}"
    return None


def producer(bootstrap: str, kafka: KafkaSettings, config: Config | None = None) -> Any:
    """An idempotent, murmur2-partitioned producer; `config` adds or overrides settings."""
    check_access(bootstrap, kafka)
    with kafka_errors(f"cannot create a producer for {bootstrap}"):
        return Producer(_config(bootstrap, kafka, PRODUCER_DEFAULTS, config))


def consumer(
    bootstrap: str, kafka: KafkaSettings, group_id: str, config: Config | None = None
) -> Any:
    """A consumer in `group_id` that never commits on its own; `config` adds settings."""
    settings = {**CONSUMER_DEFAULTS, **kafka.consumer_config, "group.id": group_id}
    check_access(bootstrap, kafka)
    with kafka_errors(f"cannot create a consumer for {bootstrap}"):
        return Consumer(_config(bootstrap, kafka, settings, config))


def admin(
    bootstrap: str,
    kafka: KafkaSettings,
    config: Config | None = None,
    logger: logging.Logger | None = None,
    *,
    checked: bool = True,
) -> Any:
    """An admin client; `logger` receives librdkafka's own log lines. `checked=False` skips
    `check_access` (a probe that only asks whether a broker answers)."""
    if checked:
        check_access(bootstrap, kafka)
    settings = _config(bootstrap, kafka, {}, config)
    if logger is not None:
        settings["logger"] = logger
    with kafka_errors(f"cannot create an admin client for {bootstrap}"):
        return AdminClient(settings)


def error_code(exc: KafkaException) -> Any:
    """The librdkafka error code inside a KafkaException (a KafkaError, or None)."""
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


def is_passing(exc: KafkaException) -> bool:
    """Whether asking again may succeed: retriable, or a leader not elected yet."""
    error = exc.args[0] if exc.args else None
    if not isinstance(error, KafkaError):
        return False
    return bool(error.retriable()) or error.code() in NO_LEADER_YET


@contextmanager
def kafka_errors(what: str) -> Iterator[None]:
    """Turn confluent-kafka exceptions into `KafkaClientError`s that say `what` failed."""
    try:
        yield
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        text = error.str() if isinstance(error, KafkaError) else str(error)
        if error_code(exc) == KafkaError._TIMED_OUT:
            raise KafkaTimeoutError(f"{what}: {text}") from exc
        raise KafkaClientError(f"{what}: {text}") from exc


def watermark(consumer: Any, tp: Any, deadline: float) -> tuple[int, int]:
    """(low, high) offsets of one partition. A topic created a moment ago can answer "not
    leader" for a while after its metadata names a leader: asked again until `deadline`
    (`time.monotonic()`), like any passing error."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                tp, timeout=max(0.1, deadline - time.monotonic())
            )
            return int(low), int(high)
        except KafkaException as exc:
            if not is_passing(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def watermarks(
    consumer: Any, topic: str, partitions: int, timeout: float
) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of each partition of `topic` (`watermark`, within `timeout`)."""
    from confluent_kafka import TopicPartition

    deadline = time.monotonic() + timeout
    return {p: watermark(consumer, TopicPartition(topic, p), deadline) for p in range(partitions)}


def partition_count(client: Any, topic: str, bootstrap: str, timeout: float) -> int:
    """Partitions of `topic`; a clear error when the broker is silent or the topic missing."""
    try:
        metadata = client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaClientError(
            f"no answer from Kafka at {bootstrap} within {timeout:g}s: {exc}"
        ) from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise ConfigurationError(
            f"topic {topic} does not exist on {bootstrap}: run `connector topics ensure`"
        )
    return len(found.partitions)

"""bench.floor's pure parts: its arguments, the children's protocol, medians and the table."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from bench.consumers import KINDS, PREFIX, comm_label, cpu_split, thread_cpu, thread_label
from bench.consumers import parse as parse_consumer
from bench.floor import (
    PEER,
    consumer_line,
    encoded_commands,
    idle_topics,
    parse_args,
    protocol,
    row,
    summarize,
    table_lines,
    worker_floor,
)
from streams.avro.codec import default_codecs
from streams.settings import TopicSettings


def test_defaults_quick_and_rate() -> None:
    args = parse_args([])
    assert (args.events, args.rounds, args.rate) == (10_000, 3, None)
    assert args.kinds == [*KINDS, PEER]
    quick = parse_args(["--quick"])
    assert (quick.events, quick.rounds) == (2000, 2)
    steady = parse_args(["--rate", "50", "--seconds", "30"])
    assert steady.events == 1500  # what the rate makes in that time, not --events
    assert parse_args(["--kinds", "peer", "aiokafka"]).kinds == ["peer", "aiokafka"]


@pytest.mark.parametrize("argv", [["--rate", "0"], ["--kinds", "kafka-streams"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_protocol_lines_are_told_from_a_clients_own_output() -> None:
    assert protocol(f"{PREFIX}ready\n", PREFIX) == "ready"
    assert protocol('[2026-11-29 04:00] [1] [WARNING] faust says "floor: ready"', PREFIX) is None
    assert protocol("ready\n", "") == "ready"  # the peer's lines are all protocol


def test_each_kind_runs_in_its_module_and_only_the_worker_shape_reads_idle_topics() -> None:
    topics = TopicSettings(topic_prefix="t.")
    backlog: Any = SimpleNamespace(bootstrap="127.0.0.1:9", users="t.users", topics=topics)
    idle = idle_topics(topics)
    assert "t.connector.commands.v1" not in idle and len(idle) == 5
    assert "t.intouch.users.v1" in idle and "t.connector.parked.v1" in idle
    for kind in KINDS:
        line = consumer_line(kind, backlog, 100, idle=idle)
        assert line[1:4] == ["-m", "bench.consumers", kind]
        args = parse_consumer(line[3:])
        assert (args.topic, args.events) == ("t.connector.commands.v1", 100)
        assert args.idle_topics == (idle if kind == "faust-worker" else [])
    peer = consumer_line(PEER, backlog, 100, "http://127.0.0.1:1/api", idle)
    assert peer[1:3] == ["-m", "bench.minimal"] and "t.users" in peer
    assert "--idle-topics" not in peer


def test_the_backlog_is_the_commands_topics_encoding() -> None:
    records = encoded_commands(8, per=4)
    codecs = default_codecs()
    decoded = [codecs["Command"].decode(value) for _, value in records]
    keys = [codecs["EntityKey"].decode(key) for key, _ in records]
    assert [(c["intouch_id"], c["version"]) for c in decoded[:3]] == [
        ("u0", 1),
        ("u1", 1),
        ("u0", 2),
    ]
    assert all(k["intouch_id"] == c["intouch_id"] for k, c in zip(keys, decoded, strict=True))
    assert {c["kind"] for c in decoded} == {"UPSERT_PROSPECT"}


def test_a_row_is_per_event_and_drops_idle_threads() -> None:
    measured = {"seconds": 2.0, "cpu_seconds": 1.5, "threads": {"main": 1.0, "rdkafka": 0.0}}
    assert row("aiokafka", 2, 1000, measured) == {
        "kind": "aiokafka",
        "round": 2,
        "events_per_s": 500.0,
        "cpu_ms_per_event": 1.5,
        "threads_ms": {"main": 1.0},
    }


def runs() -> list[dict[str, object]]:
    def run(kind: str, cpu: float, rate: float, threads: dict[str, float]) -> dict[str, object]:
        return {"kind": kind, "events_per_s": rate, "cpu_ms_per_event": cpu, "threads_ms": threads}

    return [
        run("peer", 0.5, 600.0, {}),
        run("peer", 0.4, 700.0, {}),
        run("peer", 0.9, 100.0, {}),
        run("faust-events", 1.0, 900.0, {"main": 0.8, "faust-consumer": 0.2}),
        run("faust-events", 3.0, 300.0, {"main": 2.0}),  # the thread idle that round
        run("faust-events", 2.0, 500.0, {"main": 1.5, "faust-consumer": 0.4}),
        run("faust-batches", 0.5, 2000.0, {"main": 0.5}),
        run("confluent-decode", 0.1, 5000.0, {"main": 0.1, "rdkafka": 0.001}),
        run("confluent-decode", 0.1, 5000.0, {"main": 0.1}),
        run("confluent-decode", 0.1, 5000.0, {"main": 0.1}),
    ]


def test_the_summary_takes_medians_and_compares_cpu_with_the_peers() -> None:
    table = summarize(runs(), ["faust-events", "aiokafka", "peer"])
    assert [r["kind"] for r in table] == ["faust-events", "peer"]  # aiokafka never ran
    events, peer = table
    assert (events["cpu_ms_per_event"], events["events_per_s"]) == (2.0, 500.0)
    assert events["x_peer"] == 4.0 and peer["x_peer"] == 1.0
    assert events["threads_ms"] == {"faust-consumer": 0.2, "main": 1.5}  # absent counts 0
    follower = summarize(runs(), ["confluent-decode"])[0]
    assert follower["threads_ms"] == {"main": 0.1}  # a median of 0 is left out


def test_the_worker_floor_sums_what_it_consumes_through_each_client() -> None:
    kinds = ["faust-events", "faust-batches", "confluent-decode", "peer"]
    floor = worker_floor(summarize(runs(), kinds))
    assert floor == {"cpu_ms_per_event": 2.7, "x_peer": 5.4}  # 2 + 0.5 + 2 x 0.1, / 0.5
    assert worker_floor(summarize(runs(), ["faust-events", "peer"])) is None
    lines = table_lines(summarize(runs(), kinds), floor)
    assert lines[1].split()[:4] == ["faust-events", "500.0", "2.0", "4.0"]
    assert lines[-1].endswith("2.7 ms/event = 5.4x the peer")


def test_threads_are_labelled_and_their_cpu_counted_since_a_reading() -> None:
    assert thread_label(os.getpid(), "python") == "main"
    assert thread_label(12345678, "rdk:broker1") == "rdkafka"
    assert [
        comm_label(7, tid, comm) for tid, comm in ((7, "python"), (8, "rdk:main"), (9, "x"))
    ] == ["main", "rdkafka", "other"]
    before = thread_cpu()
    busy, stop = threading.Event(), threading.Event()

    def spin() -> None:
        me = threading.get_native_id()
        while not stop.is_set():
            sum(n * n for n in range(10_000))
            if thread_cpu()[me][1] >= 0.05:
                busy.set()

    spinner = threading.Thread(target=spin, name="spin")
    spinner.start()
    try:
        assert busy.wait(10), "the thread never used 50 ms of CPU"
        split = cpu_split(before)
        outside = cpu_split(before, os.getpid())  # read as another process would: by comm
    finally:
        stop.set()
        spinner.join()
    assert split["spin"] >= 0.05
    assert "main" in split
    assert outside["other"] >= 0.05 and set(outside) <= {"main", "other", "rdkafka"}

"""`foryou bench ingest-ceiling`: how fast records can reach Python code on this machine, before any work.

The engagement ingest target (`ingest.engagements.events_per_s`, 30,000/s per worker) is a question of
per-record cost, so this suite measures the floor under it: N small records already in a topic, drained
by three consumers that do nothing with them:

- `ingest.ceiling.faust_take`: a bare Faust app (same broker settings as the worker: 5,000 records a
  poll, a 20,000-record stream buffer) with one agent iterating `stream.take(5000, within=0.05)`, acks on.
  This is the per-record machinery every Faust agent pays before its own code runs.
- `ingest.ceiling.aiokafka_getmany`: aiokafka's consumer (Faust's client) with `getmany(max_records=5000)`.
- `ingest.ceiling.librdkafka_batch`: confluent-kafka's `consume(num_messages=5000)` (fetch and parse in C).

Each is timed from its first record to its last, in its own process, one after the other on one broker;
the worker's CPU time is recorded beside it. An engagement passes through a Faust agent twice (its public
topic, then the user-keyed `<app>-user-events`), so half of `faust_take` bounds the worker's engagement
rate from above whatever our own code does.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from foryou.bench_ingest import cpu_seconds
from foryou.benchmarks import RESULTS_DIR, merge_results, record
from foryou.kafka_local import LocalKafka
from foryou.settings import aiokafka_config, faust_broker_config, librdkafka_config, state_dir

BATCH = 5_000
PARTITIONS = 4
FAUST_MODES = ("faust-take", "faust-noack-take", "faust-each")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench ingest-ceiling", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="records each consumer drains")
    parser.add_argument("--quick", action="store_true", help="20k records")
    parser.add_argument("--out", default=str(RESULTS_DIR / "ingest.json"))
    # Internal: run one consumer in this process and print its timing (the suite starts these).
    parser.add_argument("--consumer", choices=[*FAUST_MODES, "aiokafka", "librdkafka"], help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _fill_topic(bootstrap: str, topic: str, count: int) -> None:
    admin = AdminClient(librdkafka_config(bootstrap, config={"log_level": 3}))
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    producer = Producer(librdkafka_config(bootstrap, config={"linger.ms": 20, "log_level": 3}))
    # An engagement's size on the wire (about 120 bytes of JSON), keyed by user like the public topic.
    for i in range(count):
        value = orjson.dumps({"user_id": i % 20_000, "post_id": i, "action": "favorite", "ts_ms": i})
        while True:
            try:
                producer.produce(topic, value=value, key=str(i % 20_000).encode())
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) > 0:
        raise RuntimeError(f"records to {topic} still undelivered after 120 s")


def _write_result(path: str, count: int, first: float, last: float) -> None:
    Path(path).write_bytes(orjson.dumps({"count": count, "seconds": last - first}))


def _run_librdkafka(args: argparse.Namespace) -> None:
    consumer = Consumer(librdkafka_config(args.bootstrap, config={
        "group.id": f"ceiling-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest", "log_level": 3,
    }))
    consumer.subscribe([args.topic])
    count, first = 0, 0.0
    while count < args.events:
        messages = consumer.consume(num_messages=BATCH, timeout=1.0)
        if messages and not first:
            first = time.monotonic()
        count += sum(1 for m in messages if m.error() is None)
    _write_result(args.result, count, first, time.monotonic())
    consumer.close()


async def _aiokafka(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        args.topic, **aiokafka_config(args.bootstrap), group_id=f"ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", max_poll_records=BATCH,
    )
    await consumer.start()
    count, first = 0, 0.0
    try:
        while count < args.events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            if batches and not first:
                first = time.monotonic()
            count += sum(len(records) for records in batches.values())
    finally:
        _write_result(args.result, count, first, time.monotonic())
        await consumer.stop()


def _run_faust(args: argparse.Namespace) -> None:
    import faust

    app = faust.App(
        f"ceiling-{uuid.uuid4().hex[:8]}", **faust_broker_config(args.bootstrap), datadir=args.data_dir,
        web_enabled=False, consumer_auto_offset_reset="earliest", broker_max_poll_records=BATCH,
        stream_buffer_maxsize=20_000, stream_wait_empty=False, value_serializer="raw", key_serializer="raw",
    )
    topic = app.topic(args.topic, value_serializer="raw", key_serializer="raw")
    progress = {"count": 0, "first": 0.0}

    def seen(count: int) -> None:
        if not progress["first"]:
            progress["first"] = time.monotonic()
        progress["count"] += count
        if progress["count"] >= args.events:
            _write_result(args.result, int(progress["count"]), progress["first"], time.monotonic())

    @app.agent(topic)
    async def drain(stream: faust.StreamT) -> None:
        if args.consumer == "faust-take":
            async for values in stream.take(BATCH, within=0.05):
                seen(len(values))
        elif args.consumer == "faust-noack-take":
            # The worker's own pattern: batches taken without acks, each event acked after its batch.
            async for events in stream.noack_take(BATCH, within=0.05):
                for event in events:
                    await stream.ack(event)
                seen(len(events))
        else:
            async for _value in stream:
                seen(1)

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


def _measure(consumer: str, bootstrap: str, topic: str, count: int, run: Path) -> tuple[float, float]:
    """Events/s and the consumer process's CPU seconds for one consumer draining `count` records."""
    result = run / f"{consumer}.json"
    command = [
        sys.executable, "-m", "foryou.bench_ingest_ceiling", "--consumer", consumer, "--bootstrap", bootstrap,
        "--topic", topic, "--events", str(count), "--result", str(result), "--data-dir", str(run / consumer),
    ]
    with open(run / f"{consumer}.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while not result.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"{consumer} consumer exited {proc.returncode}; see {run / consumer}.log")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{consumer} consumer did not drain {count} records in 600 s")
                time.sleep(0.05)
            cpu_s = cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    timing = orjson.loads(result.read_bytes())
    return timing["count"] / timing["seconds"], cpu_s


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.consumer:
        if args.consumer in FAUST_MODES:
            _run_faust(args)
        elif args.consumer == "aiokafka":
            asyncio.run(_aiokafka(args))
        else:
            _run_librdkafka(args)
        return 0
    if args.quick:
        args.events = 20_000
    broker = LocalKafka(state_dir() / "kafka-bench")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or broker.start(fresh=True)
    run = state_dir() / "bench" / f"ceiling-{uuid.uuid4().hex[:8]}"
    run.mkdir(parents=True)
    topic = f"ceiling-{uuid.uuid4().hex[:8]}"
    records = []
    try:
        _fill_topic(bootstrap, topic, args.events)
        load_before = os.getloadavg()[0]
        for consumer, name in [("faust-take", "faust_take"), ("faust-noack-take", "faust_noack_take"),
                               ("faust-each", "faust_each"), ("aiokafka", "aiokafka_getmany"),
                               ("librdkafka", "librdkafka_batch")]:
            rate, cpu_s = _measure(consumer, bootstrap, topic, args.events, run)
            print(f"{name}: {rate:,.0f} records/s, consumer process CPU {cpu_s:.1f} s (start-up included)")
            records.append(record(
                f"ingest.ceiling.{name}", "events_per_s", rate, "events/s", None, events=args.events,
                partitions=PARTITIONS, batch=BATCH, consumer_cpu_s_with_startup=round(cpu_s, 2),
                load_avg_1m_before=round(load_before, 2), load_avg_1m_after=round(os.getloadavg()[0], 2),
                cores=os.cpu_count(), note="no-op consumer; broker and consumer on one shared 2-core machine",
            ))
    finally:
        if not os.environ.get("KAFKA_BOOTSTRAP"):
            broker.stop()
    path = merge_results(args.out, records)
    print(f"results merged into {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The `foryou` command: one entry point for the broker, the worker, the model and the clients."""

import argparse
import sys
from collections.abc import Callable, Sequence


def _kafka(args: argparse.Namespace) -> int:
    import os

    from foryou.kafka_local import local_kafka
    from foryou.settings import kafka_bootstrap

    if os.environ.get("KAFKA_BOOTSTRAP"):
        print(f"KAFKA_BOOTSTRAP is set: using the broker at {kafka_bootstrap()}, nothing to {args.action}")
        return 0
    broker = local_kafka()
    if args.action == "start":
        print(broker.start())
    elif args.action == "stop":
        print("stopped" if broker.stop() else "not running")
    else:
        pid, address = broker.running_pid(), broker.bootstrap()
        if pid and address:
            print(f"running pid={pid} bootstrap={address}")
        else:
            print("not running")
            return 1
    return 0


def _worker(args: argparse.Namespace) -> int:
    from agents.app import run_worker

    return run_worker()


def _topics(args: argparse.Namespace) -> int:
    from agents.topology import describe_topics, ensure_topics
    from foryou.settings import Settings

    settings = Settings()
    if args.action == "create":
        for line in ensure_topics(settings):
            print(line)
    else:
        for line in describe_topics(settings):
            print(line)
    return 0


def _delegate(module: str) -> Callable[[argparse.Namespace], int]:
    """Subcommands whose module parses its own arguments (`main(argv) -> int`)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return importlib.import_module(module).main(args.rest)

    return run


_BENCH_SUITES = {"phoenix": "phoenix.bench", "feed": "agents.bench_feed", "stores": "stores.bench"}


def _bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(_BENCH_SUITES[args.suite]).main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foryou", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the local single-node broker (ignored when KAFKA_BOOTSTRAP is set)")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(run=_kafka)

    worker = sub.add_parser("worker", help="run a Faust worker (settings from the environment)")
    worker.set_defaults(run=_worker)

    topics = sub.add_parser("topics", help="create or describe the public and internal topics")
    topics.add_argument("action", choices=["create", "describe"])
    topics.set_defaults(run=_topics)

    for name, module, text in [
        ("train", "phoenix.train", "train Phoenix on an engagement log (see --help)"),
        ("eval", "phoenix.evaluate", "evaluate a checkpoint against baselines (see --help)"),
        ("higgs", "phoenix.higgs", "turn the SNAP Higgs data into an engagement log (see --help)"),
        ("world", "foryou.world.cli", "the simulated world: generate, replay, evaluate (see --help)"),
    ]:
        cmd = sub.add_parser(name, help=text, add_help=False)
        cmd.add_argument("rest", nargs=argparse.REMAINDER)
        cmd.set_defaults(run=_delegate(module))

    bench = sub.add_parser("bench", help="run a benchmark suite; results under bench/results/")
    bench.add_argument("suite", choices=sorted(_BENCH_SUITES))
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

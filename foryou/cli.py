"""The `foryou` command: one entry point for the broker, the worker, the model and the clients."""

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

# Optional TweetCreate fields `foryou produce post` passes through when given.
_POST_OPTIONS = (
    "created_at_ms", "in_reply_to_post_id", "in_reply_to_user_id", "repost_of_post_id", "repost_of_user_id",
    "quote_of_post_id", "conversation_id", "video_duration_ms",
)
_GRAPH_KINDS = ("follow", "unfollow", "block", "unblock", "mute", "unmute")


def _kafka(args: argparse.Namespace) -> int:
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


def _security(args: argparse.Namespace) -> int:
    from foryou.acls import acl_plan, apply_acls, upsert_scram_user
    from foryou.settings import Settings

    settings = Settings()
    if args.action == "scram-user":
        password = os.environ.get("FORYOU_NEW_USER_PASSWORD") or sys.stdin.readline().rstrip("\n")
        upsert_scram_user(args.name, password, settings.bootstrap, settings.kafka_security)
        print(f"SCRAM-SHA-512 credentials set for {args.name}")
        return 0
    plan = acl_plan(settings.app_id, worker=args.worker, client=args.client)
    if args.apply:
        print(f"applied {apply_acls(plan, settings.bootstrap, settings.kafka_security)} ACLs on {settings.bootstrap}")
    else:
        print("\n".join(acl.kafka_acls_command() for acl in plan))
    return 0


def _request(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from foryou.client import BrokerRefused, FeedClient, FeedTimeout, ReaderFailed

    options = {"max_results": args.max_results, "explain": args.explain, "in_network_only": args.in_network_only}
    with FeedClient() as client:
        try:
            answer = client.request(args.user, timeout_s=args.timeout, **options)
        except (FeedTimeout, BrokerRefused, ReaderFailed, KafkaException) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(_json(answer) if args.json else render_feed(answer))
    return 0 if answer["status"] == "ok" else 1


def _tail(args: argparse.Namespace) -> int:
    from foryou.client import BrokerRefused, FeedClient, ReaderFailed

    with FeedClient() as client:
        try:
            client.start_reading()
        except (BrokerRefused, ReaderFailed) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"following ranked-feeds on {client.bootstrap}" + (f" for user {args.user}" if args.user else ""),
              file=sys.stderr, flush=True)
        try:
            for answer in client.subscribe(args.user, timeout_s=args.timeout):
                print(_json(answer, indent=False) if args.json else render_answer_line(answer), flush=True)
        except KeyboardInterrupt:
            pass
    return 0


def _produce(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from foryou.client import BrokerRefused, FeedClient
    from topics.validation import InvalidRecord

    with FeedClient() as client:
        try:
            if args.kind == "post":
                fields = {name: getattr(args, name) for name in _POST_OPTIONS if getattr(args, name) is not None}
                client.post(args.post_id, args.author_id, text=args.text, media=args.media,
                            subscriber_only=args.subscriber_only, **fields)
                sent = f"post {args.post_id} by {args.author_id}"
            elif args.kind == "delete":
                client.delete(args.post_id, args.author_id)
                sent = f"delete of post {args.post_id}"
            elif args.kind == "engage":
                client.engage(args.user_id, args.post_id, args.author_id, args.action, surface=args.surface,
                              dwell_ms=args.dwell_ms)
                sent = f"{args.action} by {args.user_id} on post {args.post_id}"
            elif args.kind in ("mute_keyword", "unmute_keyword"):
                client.social(args.kind, args.user_id, keyword=args.keyword)
                sent = f"{args.kind} {args.keyword!r} by {args.user_id}"
            else:
                client.social(args.kind, args.user_id, target_id=args.target_id)
                sent = f"{args.kind} {args.user_id} -> {args.target_id}"
        except InvalidRecord as exc:
            print(f"invalid, not sent: {exc.reason}: {exc.detail}", file=sys.stderr)
            return 2
        try:
            client.flush()
        except (BrokerRefused, KafkaException) as exc:
            print(f"error: not sent: {exc}", file=sys.stderr)
            return 1
    print(f"sent {sent}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    import orjson

    url = f"{args.worker or _default_worker_url()}/inspect/{args.kind}/{args.id}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status, body = response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        status, body = exc.code, orjson.loads(exc.read() or b"{}")
    except OSError as exc:
        print(f"error: no worker answered at {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(_json(body))
    elif "error" in body:
        print(f"error ({status}): {body['error']}", file=sys.stderr)
    else:
        print(render_user(body) if args.kind == "user" else render_post(body))
    return 0 if status == 200 else 1


def _default_worker_url() -> str:
    from foryou.settings import Settings

    settings = Settings()
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "") else settings.web_host
    return f"http://{host}:{settings.web_port}"


def _json(value: object, indent: bool = True) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0).decode()


# -- rendering (plain functions of the wire dicts) -------------------------------------------------------------

TOP_ACTIONS = 3


def render_answer_line(answer: dict[str, Any]) -> str:
    head = f"user {answer['user_id']}  request {answer['request_id']}  {answer['status']}"
    if answer["status"] != "ok":
        return f"{head}: {answer['error']}"
    posts = " ".join(str(post["post_id"]) for post in answer["posts"])
    return f"{head}  {len(answer['posts'])} posts  model {answer['model']}  {answer['latency_ms']:.1f} ms  [{posts}]"


def render_feed(answer: dict[str, Any]) -> str:
    """The ranked feed as a table; with the request's explain, each post's top action probabilities and the
    per-stage candidate counts follow."""
    lines = [render_answer_line(answer).split("  [")[0]]
    if answer["status"] != "ok":
        return lines[0]
    from foryou.tables import Justify, render_table

    post_columns: list[tuple[str, Justify]] = [
        ("rank", "right"), ("post", "right"), ("author", "right"), ("score", "right"), ("in-network", "left")
    ]
    header, *rows = render_table(post_columns, (
        [str(post["rank"]), str(post["post_id"]), str(post["author_id"]), f"{post['score']:.4f}",
         "yes" if post["in_network"] else "no"]
        for post in answer["posts"]
    )).splitlines()
    lines.append(header)
    for post, row in zip(answer["posts"], rows, strict=True):
        lines.append(row)
        if post.get("explain"):  # under its post, as long as it needs
            lines.append(f"{'':>6}{render_post_explain(post['explain'])}")
    stages = (answer.get("explain") or {}).get("stages")
    if stages:
        lines += ["", render_table(
            [("stage", "left"), ("kind", "left"), ("status", "left"), ("in", "right"), ("out", "right"),
             ("ms", "right"), ("removed", "left")],
            (
                [stage["name"], stage["kind"], stage["status"], str(stage["in"]), str(stage["out"]),
                 f"{stage['ms']:.2f}", ", ".join(f"{reason}={count}" for reason, count in stage["removed"].items())]
                for stage in stages
            ),
        )]
    degraded = (answer.get("explain") or {}).get("degraded")
    if degraded:
        lines.append(f"degraded: {', '.join(degraded)}")
    return "\n".join(lines)


def render_post_explain(explain: dict[str, Any]) -> str:
    parts = [f"source {explain.get('source')}"]
    probabilities = explain.get("probabilities")
    if probabilities:
        top = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)[:TOP_ACTIONS]
        parts.append("top " + ", ".join(f"{name} {p:.3f}" for name, p in top))
    for key in ("weighted_score", "diversity_multiplier", "oon_multiplier"):
        if explain.get(key) is not None:
            parts.append(f"{key} {explain[key]:.4g}")
    if explain.get("view_count") is not None:
        parts.append(f"views {explain['view_count']} engagements {explain.get('engagement_count')}")
    if explain.get("mutual_follow"):
        parts.append("mutual follow")
    if explain.get("cold_start_lifted"):
        parts.append("cold start lift")
    if explain.get("dpp"):
        parts.append(f"dpp {explain['dpp']}")
    return "  ".join(parts)


def render_user(body: dict[str, Any]) -> str:
    def ids(values: list[int]) -> str:
        return ", ".join(map(str, values)) or "-"

    lines = [
        f"user {body['user_id']}  (partition {body['partition']}, held by {body['worker']})",
        f"following ({len(body['following'])}): {ids(body['following'])}",
        f"blocked ({len(body['blocked'])}): {ids(body['blocked'])}",
        f"muted ({len(body['muted'])}): {ids(body['muted'])}",
        f"muted keywords: {', '.join(body['muted_keywords']) or '-'}",
        f"served ({len(body['served_ids'])}): {ids(body['served_ids'])}",
        f"answered requests: {len(body['answered_requests'])}",
        f"action sequence ({len(body['actions'])}, oldest first):",
    ]
    for entry in body["actions"]:
        dwell = f" dwell {entry['dwell_ms']}ms" if entry["dwell_ms"] is not None else ""
        lines.append(
            f"  {entry['ts_ms']}  post {entry['post_id']} by {entry['author_id']}  {'+'.join(entry['actions'])}"
            f"  on {entry['surface']}{dwell}"
        )
    return "\n".join(lines)


def render_post(body: dict[str, Any]) -> str:
    post = body.get("post") or {}
    lines = [f"post {body['post_id']}{'  (deleted)' if body.get('deleted') else ''}"]
    lines += [f"  {key}: {value}" for key, value in post.items() if value not in (None, "", False)]
    lines.append(f"  follower count of author: {body.get('follower_count_of_author')}")
    return "\n".join(lines)


# Commands whose module parses its own arguments (`main(argv) -> int`). They are dispatched before argparse
# sees the command line, so every option (`--help` included) reaches the module's own parser untouched.
DELEGATED: dict[str, tuple[str, str]] = {
    "train": ("phoenix.train", "train Phoenix on an engagement log"),
    "eval": ("phoenix.evaluate", "evaluate a checkpoint against baselines"),
    "higgs": ("phoenix.higgs", "turn the SNAP Higgs data into an engagement log"),
    "world": ("foryou.world.cli", "the simulated world: generate, replay, evaluate"),
    "demo": ("foryou.demo", "the main job end to end: broker, worker, world, feeds"),
    "simulate-post": ("foryou.simulate_post", "how a draft would fare: reach, engagements, rank per user"),
    "explore": ("foryou.explore.server", "the feed explorer: a web page beside the workers"),
    "calibrate": ("foryou.calibrate", "calibration metrics and per-head calibration; weight tuning on logs"),
    "trainer": ("foryou.trainer", "train Phoenix from the impression and engagement streams, publish checkpoints"),
    "json-schemas": ("foryou.json_schemas", "write (or --check) the JSON Schema files of the public topics"),
}


_BENCH_SUITES = {
    "capacity": "foryou.bench_capacity",
    "dpp": "scoring.bench",
    "phoenix": "phoenix.bench",
    "content": "phoenix.content_bench",
    "feed": "foryou.bench_feed",
    "ingest": "foryou.bench_ingest",
    "ingest-ceiling": "foryou.bench_ingest_ceiling",
    "pipeline": "foryou.bench_pipeline",
    "simulate": "foryou.bench_simulate",
    "simulate-world": "foryou.world.drafts",
    "weights-world": "foryou.world.weights_check",
    "stores": "stores.bench",
    "filters": "foryou.bench_filters",
}


def _bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(_BENCH_SUITES[args.suite]).main(args.rest)


def _add_client_commands(sub: Any) -> None:
    request = sub.add_parser("request", help="request a user's ranked feed and print it")
    request.add_argument("user", type=int)
    request.add_argument("--max-results", type=int, default=None,
                         help="posts to return, 1 to 500 (default: the worker's preset feed size)")
    request.add_argument("--explain", action="store_true", help="per-post probabilities and per-stage counts")
    request.add_argument("--in-network-only", action="store_true")
    request.add_argument("--json", action="store_true", help="the answer as on ranked-feeds")
    request.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    request.set_defaults(run=_request)

    tail = sub.add_parser("tail", help="follow ranked-feeds: one line per answer (Ctrl-C stops)")
    tail.add_argument("--user", type=int, default=None, help="only this user's answers")
    tail.add_argument("--json", action="store_true", help="one JSON answer per line")
    tail.add_argument("--timeout", type=float, default=None, help="stop after this many seconds without one")
    tail.set_defaults(run=_tail)

    produce = sub.add_parser("produce", help="produce one validated event")
    kinds = produce.add_subparsers(dest="kind", required=True)
    post = kinds.add_parser("post", help="a new post")
    post.add_argument("post_id", type=int)
    post.add_argument("author_id", type=int)
    post.add_argument("--text", default="")
    post.add_argument("--media", choices=["none", "photo", "video"], default="none")
    post.add_argument("--subscriber-only", action="store_true")
    for name in _POST_OPTIONS:
        post.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)
    delete = kinds.add_parser("delete", help="delete a post")
    delete.add_argument("post_id", type=int)
    delete.add_argument("author_id", type=int)
    engage = kinds.add_parser("engage", help="a user's action on a post")
    engage.add_argument("user_id", type=int)
    engage.add_argument("post_id", type=int)
    engage.add_argument("author_id", type=int)
    engage.add_argument("action", help="one of the 19 actions, e.g. favorite, reply, repost, click")
    engage.add_argument("--surface", default="home_for_you")
    engage.add_argument("--dwell-ms", type=int, default=None)
    for kind in _GRAPH_KINDS:
        graph = kinds.add_parser(kind, help=f"social graph: user {kind}s target")
        graph.add_argument("user_id", type=int)
        graph.add_argument("target_id", type=int)
    for kind in ("mute_keyword", "unmute_keyword"):
        keyword = kinds.add_parser(kind.replace("_", "-"), help=f"social graph: {kind.replace('_', ' ')}")
        keyword.add_argument("user_id", type=int)
        keyword.add_argument("keyword")
        keyword.set_defaults(kind=kind)
    produce.set_defaults(run=_produce)

    inspect = sub.add_parser("inspect", help="what a worker's stores hold for a post or a user")
    inspect.add_argument("kind", choices=["post", "user"])
    inspect.add_argument("id", type=int)
    inspect.add_argument("--worker", default=None, help="a worker's URL (default: FORYOU_WEB_HOST/PORT)")
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(run=_inspect)


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

    security = sub.add_parser("security", help="the broker's ACLs for workers and clients; SCRAM users")
    actions = security.add_subparsers(dest="action", required=True)
    acls = actions.add_parser("acls", help="print the ACLs as kafka-acls commands, or --apply them (as admin)")
    acls.add_argument("--apply", action="store_true", help="create them with the admin API (FORYOU_KAFKA_* as admin)")
    acls.add_argument("--worker", default="User:worker", help="the workers' principal")
    acls.add_argument("--client", default="User:client", help="the clients' principal")
    scram = actions.add_parser(
        "scram-user", help="create or change a SCRAM-SHA-512 user (as admin); the password from "
        "FORYOU_NEW_USER_PASSWORD, else the first line of stdin",
    )
    scram.add_argument("name")
    security.set_defaults(run=_security)

    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=f"{text} (`foryou {name} --help`)", add_help=False)

    _add_client_commands(sub)

    bench = sub.add_parser("bench", help="run a benchmark suite; results under bench/results/")
    bench.add_argument("suite", choices=sorted(_BENCH_SUITES))
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return int(importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:]) or 0)
    if argv[:1] == ["bench"] and len(argv) > 1 and argv[1] in _BENCH_SUITES:
        return int(importlib.import_module(_BENCH_SUITES[argv[1]]).main(argv[2:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

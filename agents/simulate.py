"""The simulator's HTTP endpoints on a worker: thin wiring of streams.simulate to Faust's web server.

User state is partitioned, so the work goes where the state lives, as `/inspect/user` does:
- `POST /simulate/post` (any worker): fans the request out to every worker of the group (Faust's table
  metadata names them and their partitions), each scores the audience members it owns
  (`POST /simulate/local`), and merges the parts; then asks the owner of a sample user for the
  stage-by-stage breakdown.
- `POST /simulate/user/{id}` and `GET /simulate/feed/{id}`: one user, answered by (forwarded to) the owner
  of the user's partition: the draft run through the production pipeline for that user, or the user's
  current feed with every post explained (no side effects: nothing is recorded as served).
- `GET /simulate/users`: the users each worker owns (merged), for pickers.
"""

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import faust
import orjson
from faust.types import TP
from yarl import URL

from agents.ops import ROUTED_HEADER, owner_url, parse_user_id, same_node
from phoenix.audience import AudienceRanker
from phoenix.ranker import Ranker
from streams.config import ForYouConfig
from streams.draft import Draft
from streams.ports import EngagementCountsStore, PostStore, UserStateStore
from streams.simulate import DraftSimulator, choose_audience, merge, summarize
from topics.partitioning import partition_for_id
from topics.validation import InvalidRecord

log = logging.getLogger(__name__)

# A simulation may build many users' baselines first (tens of ms each): the forwarded parts get this long.
FORWARD_TIMEOUT_S = float(os.environ.get("FORYOU_SIMULATE_TIMEOUT_S", "600"))
DEFAULT_OON_SAMPLE = 200
DEFAULT_TOP_K = 30
MAX_USERS_LISTED = 500


class BadRequest(ValueError):
    pass


def new_simulator(
    config: ForYouConfig,
    post_store: PostStore | None,
    user_state: UserStateStore,
    ranker: Ranker | None,
    counts: EngagementCountsStore | None = None,
) -> DraftSimulator | None:
    """The worker's simulator, or None without a Phoenix model. Its per-user baseline cache keeps
    FORYOU_SIMULATE_CACHE_USERS users (default 5000) for FORYOU_SIMULATE_CACHE_TTL_S seconds (default 300)."""
    if ranker is None or post_store is None:
        return None
    return DraftSimulator(
        config=config, post_store=post_store, user_state=user_state, ranker=ranker,
        audience_ranker=AudienceRanker(ranker),
        cache_ttl_s=float(os.environ.get("FORYOU_SIMULATE_CACHE_TTL_S", "300")),
        cache_users=int(os.environ.get("FORYOU_SIMULATE_CACHE_USERS", "5000")),
        counts=counts,
    )


def _int_option(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def parse_simulation(body: Any) -> tuple[Draft, int, int]:
    """(draft, top_k, oon_sample) from a request body; BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the body is a JSON object with a 'draft'")
    try:
        draft = Draft.from_json(body.get("draft"))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise BadRequest(str(exc)) from exc
    return draft, _int_option(body, "top_k", DEFAULT_TOP_K, 1, 100), _int_option(
        body, "oon_sample", DEFAULT_OON_SAMPLE, 0, 100_000
    )


class Simulations:
    def __init__(
        self,
        app: faust.App,
        *,
        partitions: int,
        locator: faust.Table,
        user_tables: Mapping[str, faust.Table],
        following: Callable[[int], frozenset[int]],
        build: Callable[[], DraftSimulator | None],
        worker_name: str,
    ) -> None:
        self.app = app
        self.partitions = partitions
        self.locator = locator
        self.user_tables = dict(user_tables)
        self.following = following
        self._build = build
        self._simulator: DraftSimulator | None = None
        self.worker_name = worker_name

    # -- routing ----------------------------------------------------------------------------------------

    def _distribution(self) -> Mapping[str, Mapping[str, Any]]:
        return self.app.router.table_metadata(self.locator.name)

    def _owned(self, user_id: int) -> bool:
        topic = self.locator.changelog_topic.get_topic_name()
        return TP(topic, partition_for_id(user_id, self.partitions)) in self.app.assignor.assigned_actives()

    def owned_users(self) -> list[int]:
        """Users with state in this worker's active partitions (any user table)."""
        users: set[int] = set()
        for table in self.user_tables.values():
            users.update(int(k) for k in table)
        return sorted(u for u in users if self._owned(u))

    def _workers(self) -> list[URL]:
        urls = [URL(u) for u in self._distribution()]
        here = self.app.conf.canonical_url
        return urls if any(same_node(u, here) for u in urls) else [here, *urls]

    async def _call(
        self, url: URL, path: str, body: Any | None, query: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        target = url.with_path(path).with_query(query or {})
        headers = {ROUTED_HEADER: str(self.app.conf.canonical_url)}
        client = self.app.http_client
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
        if body is None:
            request = client.get(target, headers=headers, timeout=timeout)
        else:
            request = client.post(target, data=orjson.dumps(body), headers=headers, timeout=timeout)
        try:
            async with request as response:
                return response.status, orjson.loads(await response.read())
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError) as exc:
            reason = f"the worker at {url.origin()} did not answer within {FORWARD_TIMEOUT_S:.0f}s: {exc!r}"
            return 504, {"error": reason}

    async def _to_owner(
        self, request: faust.web.Request, user_id: int, path: str, body: Any | None, local: Callable[[], Any],
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Answer here if this worker owns the user, else forward once to the owner (503 if nobody owns it)."""
        topic = self.locator.changelog_topic.get_topic_name()
        partition = partition_for_id(user_id, self.partitions)
        owner = owner_url(self._distribution(), topic, partition)
        elsewhere = owner is not None and not same_node(URL(owner), self.app.conf.canonical_url)
        if elsewhere and ROUTED_HEADER not in request.headers:
            return await self._call(URL(owner), path, body, query)
        if not self._owned(user_id):
            return 503, {"error": f"partition {partition} of user {user_id} is not active on any worker yet"}
        return 200, await local()

    # -- endpoints --------------------------------------------------------------------------------------

    def _ready(self) -> DraftSimulator:
        if self._simulator is None:
            self._simulator = self._build()
        simulator = self._simulator
        if simulator is None:
            raise BadRequest("this worker serves no Phoenix model (FORYOU_POLICY is not phoenix): nothing to simulate")
        return simulator

    async def _body(self, web: faust.web.View, request: faust.web.Request) -> Any:
        try:
            return orjson.loads(await web.read_request_content(request))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from exc

    async def handle(self, web: faust.web.View, work: Callable[[], Any]) -> Any:
        try:
            status, body = await work()
        except (BadRequest, InvalidRecord) as exc:
            status, body = 400, {"error": str(exc)}
        except Exception as exc:  # an operator's tool: say what failed instead of a bare 500
            log.exception("simulation failed")
            status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return web.json(body, status=status)

    async def local(self, web: faust.web.View, request: faust.web.Request) -> tuple[int, Any]:
        """This worker's part: its followers of the author and its share of the out-of-network sample."""
        body = await self._body(web, request)
        draft, top_k, oon_sample = parse_simulation(body)
        simulator = self._ready()
        users = self.owned_users()
        share = round(oon_sample * _owned_share(self.app, self.locator, self.partitions))
        followers, sample, population = choose_audience(
            draft.author_id, users, {u: self.following(u) for u in users}, share
        )
        outcomes = await simulator.simulate_audience(draft, followers + sample, top_k=top_k)
        return 200, summarize(outcomes, oon_population=population, weights=simulator.config.weights,
                              worker=self.worker_name)

    async def post(self, web: faust.web.View, request: faust.web.Request) -> tuple[int, Any]:
        """Fan out to every worker, merge, add one user's stage-by-stage breakdown."""
        started = time.perf_counter()
        body = await self._body(web, request)
        draft, top_k, _ = parse_simulation(body)
        simulator = self._ready()
        answers = await asyncio.gather(*(self._call(url, "/simulate/local", body) for url in self._workers()))
        failed = [a for status, a in answers if status != 200]
        if failed:
            return 502, {"error": "a worker failed its part", "details": failed}
        report = merge([a for _, a in answers], simulator.config.weights)
        sample_user = body.get("sample_user")
        if sample_user is not None:
            sample_user = _int_option(body, "sample_user", 0, 1, 2**63 - 1)
        else:
            sample_user = _sample_user(report["users"])
        if sample_user is not None:
            status, breakdown = await self._to_owner(
                request, sample_user, f"/simulate/user/{sample_user}", {"draft": draft.to_json(), "top_k": top_k},
                lambda: simulator.simulate_user(draft, sample_user, top_k=top_k),
            )
            report["sample_user"] = breakdown if status == 200 else {"user_id": sample_user, **breakdown}
        report.update(draft=draft.to_json(), post_id=draft.effective_post_id(), top_k=top_k,
                      model=simulator.audience_ranker.version,
                      latency_ms=round((time.perf_counter() - started) * 1000, 1))
        return 200, report

    async def user(self, web: faust.web.View, request: faust.web.Request, raw_user_id: str) -> tuple[int, Any]:
        user_id = _user_id(raw_user_id)
        body = await self._body(web, request)
        draft, top_k, _ = parse_simulation(body)
        simulator = self._ready()
        return await self._to_owner(request, user_id, request.path, body,
                                    lambda: simulator.simulate_user(draft, user_id, top_k=top_k))

    async def feed(self, web: faust.web.View, request: faust.web.Request, raw_user_id: str) -> tuple[int, Any]:
        user_id = _user_id(raw_user_id)
        raw = request.query.get("top_k", str(DEFAULT_TOP_K))
        top_k = _int_option({"top_k": int(raw) if raw.isdigit() else raw}, "top_k", DEFAULT_TOP_K, 1, 100)
        simulator = self._ready()
        return await self._to_owner(request, user_id, request.path, None,
                                    lambda: simulator.preview_feed(user_id, top_k=top_k), {"top_k": str(top_k)})

    async def users(self, web: faust.web.View, request: faust.web.Request) -> tuple[int, Any]:
        if ROUTED_HEADER in request.headers:
            return 200, {"users": self.owned_users()[:MAX_USERS_LISTED]}
        answers = await asyncio.gather(*(self._call(url, "/simulate/users", None) for url in self._workers()))
        users = sorted({u for status, a in answers if status == 200 for u in a["users"]})
        return 200, {"users": users[:MAX_USERS_LISTED], "workers": len(answers)}


def _user_id(raw: str) -> int:
    try:
        return parse_user_id(raw)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _owned_share(app: faust.App, locator: faust.Table, partitions: int) -> float:
    topic = locator.changelog_topic.get_topic_name()
    owned = sum(1 for tp in app.assignor.assigned_actives() if tp.topic == topic)
    return owned / partitions


def _sample_user(users: list[dict[str, Any]]) -> int | None:
    """A follower who would be served the draft, else any follower, else anyone in the audience."""
    for wanted in (lambda u: u["follower"] and u["served"], lambda u: u["follower"], lambda u: True):
        found = next((u["user_id"] for u in users if wanted(u)), None)
        if found is not None:
            return found
    return None


def register_pages(app: faust.App, simulations: Simulations) -> None:
    """The endpoints above on the app's web server."""

    class SimulatePost(faust.web.View):
        async def post(self, request: faust.web.Request) -> faust.web.Response:
            return await simulations.handle(self, lambda: simulations.post(self, request))

    class SimulateLocal(faust.web.View):
        async def post(self, request: faust.web.Request) -> faust.web.Response:
            return await simulations.handle(self, lambda: simulations.local(self, request))

    class SimulateUser(faust.web.View):
        async def post(self, request: faust.web.Request, user_id: str) -> faust.web.Response:
            return await simulations.handle(self, lambda: simulations.user(self, request, user_id))

    class SimulateFeed(faust.web.View):
        async def get(self, request: faust.web.Request, user_id: str) -> faust.web.Response:
            return await simulations.handle(self, lambda: simulations.feed(self, request, user_id))

    class SimulateUsers(faust.web.View):
        async def get(self, request: faust.web.Request) -> faust.web.Response:
            return await simulations.handle(self, lambda: simulations.users(self, request))

    app.page("/simulate/post")(SimulatePost)
    app.page("/simulate/local")(SimulateLocal)
    app.page("/simulate/user/{user_id}")(SimulateUser)
    app.page("/simulate/feed/{user_id}")(SimulateFeed)
    app.page("/simulate/users")(SimulateUsers)

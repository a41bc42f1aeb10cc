"""`foryou explore`: the feed explorer, a web page served beside the workers.

    foryou explore [--worker URL] [--host 127.0.0.1] [--port 8090]

One page (foryou/explore/index.html: plain HTML, CSS and JavaScript, nothing fetched from elsewhere, so it
works offline) and a small JSON API that forwards to a worker, which routes each call to the worker owning
the user's state (agents.simulate):

| path | worker endpoint |
| --- | --- |
| GET /api/users | /simulate/users (users with state, every worker's) |
| GET /api/feed/{user}?top_k=K | /simulate/feed/{user} (the feed as it would be now, explained; nothing recorded) |
| POST /api/simulate | /simulate/post (the draft's expected reach over its audience) |
| POST /api/simulate/user/{user} | /simulate/user/{user} (the draft in one user's pipeline) |
| GET /api/metrics | /metrics, the key series as JSON |
"""

import argparse
import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from foryou.http import default_worker_url

PAGE = Path(__file__).with_name("index.html")
TIMEOUT = aiohttp.ClientTimeout(total=300)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def key_metrics(text: str) -> dict[str, Any]:
    """The operator's headline numbers from a worker's Prometheus text."""
    values: dict[str, Any] = {"answers_ok": 0.0, "answers_error": 0.0, "ingested": 0.0, "dead_letters": 0.0,
                              "consumer_lag": 0.0, "posts": 0.0, "latency_mean_ms": None, "model": None,
                              "rss_mb": None, "pipeline_mean_ms": None}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "foryou_feed_answers_total":
                values[f"answers_{labels.get('status')}"] = values.get(f"answers_{labels.get('status')}", 0) + value
            elif name == "foryou_records_ingested_total":
                values["ingested"] += value
            elif name == "foryou_dead_letters_total":
                values["dead_letters"] += value
            elif name == "foryou_consumer_lag_records":
                values["consumer_lag"] += value
            elif name == "foryou_post_store_posts":
                values["posts"] = value
            elif name == "foryou_model_info" and value:
                values["model"] = labels.get("version")
            elif name == "process_resident_memory_bytes":
                values["rss_mb"] = round(value / 2**20, 1)
            elif name in ("foryou_feed_request_latency_seconds_sum", "foryou_feed_request_latency_seconds_count",
                          "foryou_pipeline_latency_seconds_sum", "foryou_pipeline_latency_seconds_count"):
                sums[name] = sums.get(name, 0.0) + value
    for key, stem in (("latency_mean_ms", "foryou_feed_request_latency_seconds"),
                      ("pipeline_mean_ms", "foryou_pipeline_latency_seconds")):
        count = sums.get(f"{stem}_count", 0.0)
        if count:
            values[key] = round(sums[f"{stem}_sum"] / count * 1000, 1)
    return values


def make_app(worker: str) -> web.Application:
    async def forward(request: web.Request, path: str, *, json_body: bool = False) -> web.Response:
        session: aiohttp.ClientSession = request.app[SESSION]
        data = await request.read() if json_body else None
        method = "POST" if json_body else "GET"
        try:
            async with session.request(method, f"{worker}{path}", data=data, params=request.query) as answer:
                return web.Response(body=await answer.read(), status=answer.status, content_type="application/json")
        except aiohttp.ClientError as exc:
            return web.json_response({"error": f"no worker answered at {worker}: {exc}"}, status=502)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def users(request: web.Request) -> web.Response:
        return await forward(request, "/simulate/users")

    async def feed(request: web.Request) -> web.Response:
        return await forward(request, f"/simulate/feed/{request.match_info['user']}")

    async def simulate(request: web.Request) -> web.Response:
        return await forward(request, "/simulate/post", json_body=True)

    async def simulate_user(request: web.Request) -> web.Response:
        return await forward(request, f"/simulate/user/{request.match_info['user']}", json_body=True)

    async def metrics(request: web.Request) -> web.Response:
        session: aiohttp.ClientSession = request.app[SESSION]
        try:
            async with session.get(f"{worker}/metrics") as answer:
                return web.json_response({"worker": worker, **key_metrics(await answer.text())})
        except aiohttp.ClientError as exc:
            return web.json_response({"error": f"no worker answered at {worker}: {exc}"}, status=502)

    async def session_context(app: web.Application) -> Any:
        app[SESSION] = aiohttp.ClientSession(timeout=TIMEOUT)
        yield
        await app[SESSION].close()

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.add_routes([
        web.get("/", page),
        web.get("/api/users", users),
        web.get("/api/feed/{user}", feed),
        web.post("/api/simulate", simulate),
        web.post("/api/simulate/user/{user}", simulate_user),
        web.get("/api/metrics", metrics),
    ])
    return app


class ExplorerServer:
    """The explorer on a background event loop (for the demo and the tests); `url` once started."""

    def __init__(self, worker: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.worker, self.host, self.port = worker, host, port
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    def start(self) -> "ExplorerServer":
        import threading

        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, name="foryou-explore", daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError("the explorer did not start")
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.worker))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # the bound port (0 = any)
        self.url = f"http://{self.host}:{port}"

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou explore", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", default=None, help="a worker's URL (default FORYOU_WEB_HOST:FORYOU_WEB_PORT)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    worker = args.worker or default_worker_url()
    print(f"feed explorer on http://{args.host}:{args.port} (worker {worker}); Ctrl-C stops it", flush=True)
    web.run_app(make_app(worker), host=args.host, port=args.port, print=None)
    return 0

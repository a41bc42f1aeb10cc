"""Small JSON-over-HTTP helpers for the commands that ask a worker (simulate-post, calibrate, explore)."""

import os
import urllib.error
import urllib.request
from typing import Any

import orjson


class WorkerError(RuntimeError):
    """A worker answered with an error status, or nobody answered."""


def default_worker_url() -> str:
    """http://FORYOU_WEB_HOST:FORYOU_WEB_PORT (a wildcard host is asked on the loopback address)."""
    host = os.environ.get("FORYOU_WEB_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{host}:{os.environ.get('FORYOU_WEB_PORT', '6066')}"


def http_json(url: str, body: Any | None = None, *, timeout_s: float = 60.0) -> Any:
    """GET (no body) or POST a JSON body; the decoded JSON answer, or WorkerError with the worker's reason."""
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            reason = orjson.loads(raw).get("error", raw.decode(errors="replace"))
        except orjson.JSONDecodeError:
            reason = raw.decode(errors="replace")
        raise WorkerError(f"{url} answered {exc.code}: {reason}") from exc
    except OSError as exc:
        raise WorkerError(f"no worker answered at {url}: {exc}") from exc

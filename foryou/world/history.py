"""The users' past before a closed loop: an offline simulation over the world's last hours, kept on disk.

`simulate_history` runs `simulate_offline` from `hours` before the world's end to its end with an
exploration policy (random order over the offline candidates, so the log shows every kind of post at every
rank). It gives three things:
- the engagement log a Phoenix model is trained on (every examined post, with its actions and its
  creation time, so a model with ages learns freshness), and the posts file beside it (every post of the
  world created before the history's end: id, author, text, media, creation time; `phoenix.posts`);
- the engagement and social-graph events to replay before a loop, so each worker starts with the users'
  histories and client-made follows, blocks and mutes (what real users would have);
- the simulated users' states at the end, from which every policy's closed loop starts.

`save_history` / `load_history` keep them in a directory (JSONL), so a cached run skips the simulation.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from foryou.world.client import ClientBehaviour, UserState
from foryou.world.config import HOUR_MS
from foryou.world.offline import export_engagement_log, export_posts
from foryou.world.simulate import random_policy, simulate_offline
from foryou.world.wire import WireValue
from foryou.world.world import World

LOG_FILE = "engagement-log.jsonl"
POSTS_FILE = "posts.jsonl"
ENGAGEMENTS_FILE = "engagement-events.jsonl"
SOCIAL_FILE = "social-graph-events.jsonl"
STATES_FILE = "states.jsonl"


@dataclass(frozen=True)
class History:
    log_path: Path  # the engagement log (one line per examined post)
    posts_path: Path  # the posts file (phoenix.posts)
    engagements: list[WireValue]
    social_graph_events: list[WireValue]
    states: dict[int, UserState]


def state_to_json(state: UserState) -> dict[str, Any]:
    return {
        "user_id": state.user_id,
        "next_request_ms": state.next_request_ms,
        "is_bottom_request": state.is_bottom_request,
        "served_ids": list(state.served_ids),
        "seen_ids": list(state.seen_ids),
        "followed": sorted(state.followed),
        "blocked": sorted(state.blocked),
        "muted": sorted(state.muted),
        # JSON object keys are strings: pairs keep the author ids as integers.
        "engagements": sorted(state.engagements.items()),
        "requests": state.requests,
    }


def state_from_json(value: Mapping[str, Any]) -> UserState:
    return UserState(
        user_id=value["user_id"],
        next_request_ms=value["next_request_ms"],
        is_bottom_request=value["is_bottom_request"],
        served_ids=tuple(value["served_ids"]),
        seen_ids=tuple(value["seen_ids"]),
        followed=frozenset(value["followed"]),
        blocked=frozenset(value["blocked"]),
        muted=frozenset(value["muted"]),
        engagements={author: count for author, count in value["engagements"]},
        requests=value["requests"],
    )


def _write_jsonl(path: Path, values: Iterable[Mapping[str, Any]]) -> None:
    with path.open("wb") as out:
        for value in values:
            out.write(orjson.dumps(value) + b"\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


def simulate_history(
    world: World, directory: str | Path, *, hours: float, seed: int = 0, client: ClientBehaviour | None = None,
) -> History:
    """Simulate the last `hours` of the world offline (see the module docstring) and save it."""
    client = client or ClientBehaviour(world)
    start = world.config.end_ms - int(hours * HOUR_MS)
    result = simulate_offline(world, random_policy(seed), steps=10**9, seed=seed, policy_name="history",
                              start_ms=start, client=client)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    export_engagement_log(result.impressions, result.engagements, directory / LOG_FILE, world.created_ms)
    export_posts(world, directory / POSTS_FILE)
    _write_jsonl(directory / ENGAGEMENTS_FILE, result.engagements)
    _write_jsonl(directory / SOCIAL_FILE, result.social_graph_events)
    _write_jsonl(directory / STATES_FILE, (state_to_json(s) for s in result.states.values()))
    return History(directory / LOG_FILE, directory / POSTS_FILE, list(result.engagements),
                   list(result.social_graph_events), dict(result.states))


def load_history(directory: str | Path) -> History:
    directory = Path(directory)
    states = [state_from_json(value) for value in _read_jsonl(directory / STATES_FILE)]
    return History(
        log_path=directory / LOG_FILE,
        posts_path=directory / POSTS_FILE,
        engagements=_read_jsonl(directory / ENGAGEMENTS_FILE),
        social_graph_events=_read_jsonl(directory / SOCIAL_FILE),
        states={state.user_id: state for state in states},
    )

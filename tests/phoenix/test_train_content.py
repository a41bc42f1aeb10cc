"""Training and evaluation with a posts file: content inputs make fresh posts rankable (cold start)."""

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from phoenix import evaluate as evaluate_module
from phoenix import train as train_module
from phoenix.checkpoint import load_checkpoint
from phoenix.content import ENCODER_ID
from phoenix.log import Impression, write_log
from phoenix.posts import PostRecord, PostsFormatError, iter_posts, parse_post, with_creation_times, write_posts
from tests.phoenix.test_train import TINY

TOPICS = (
    "match goal league coach stadium season playoffs striker",
    "album concert guitar melody festival chorus remix vinyl",
    "election senate policy ballot campaign debate minister vote",
    "recipe pasta bakery ramen spices brunch sourdough tacos",
)


def cold_start_world(seed: int = 0) -> tuple[list[Impression], list[PostRecord]]:
    """Every request shows 8 posts never shown before, by random authors; user u favourites a post on topic
    u % 4 with probability 0.7, any other with 0.03. Only a post's words say what it is about."""
    rng = np.random.default_rng(seed)
    words = [t.split() for t in TOPICS]
    impressions, posts = [], []
    post_id = 1
    for n in range(900):
        user = int(rng.integers(1, 25))
        ts = 1_000_000 + n * 60_000
        for _ in range(8):
            topic = int(rng.integers(0, 4))
            text = " ".join(rng.choice(words[topic], size=4))
            author = int(rng.integers(1, 60))
            posts.append(PostRecord(post_id, text, "none", author, ts - 1000))
            liked = rng.random() < (0.7 if topic == user % 4 else 0.03)
            impressions.append(Impression(user, post_id, author, ts, "home_for_you", ("favorite",) if liked else (),
                                          f"r{n}"))
            post_id += 1
    return impressions, posts


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("content")
    impressions, posts = cold_start_world()
    log, posts_path, out = folder / "log.jsonl", folder / "posts.jsonl", folder / "model.ckpt"
    write_log(log, impressions)
    write_posts(posts_path, posts)
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setitem(train_module.CONFIGS, "demo", TINY)
        argv = ["--data", str(log), "--posts", str(posts_path), "--out", str(out), "--steps", "300",
                "--batch-size", "16", "--semantic-id-levels", "2", "--semantic-id-size", "8", "--no-progress"]
        assert train_module.main(argv) == 0
    return {"log": log, "posts": posts_path, "out": out, "folder": folder}


def test_checkpoint_carries_the_content_config_and_codebooks(trained: dict[str, Any]) -> None:
    ckpt = load_checkpoint(trained["out"])
    assert ckpt.cfg.content_dim > 0 and ckpt.cfg.content_encoder == ENCODER_ID
    assert (ckpt.cfg.semantic_id_levels, ckpt.cfg.semantic_id_size) == (2, 8)
    assert ckpt.codebooks is not None and ckpt.codebooks.shape == (2, 8, ckpt.cfg.content_dim)
    assert ckpt.meta["content"]["posts"] == 7200 and ckpt.meta["posts"] == str(trained["posts"])
    # Affinity: the served-posts input is on and every input's bins were fitted on the training examples.
    assert ckpt.cfg.served_affinity and ckpt.cfg.num_affinity_inputs == 3
    edges = np.asarray(ckpt.cfg.affinity_edges)
    assert edges.shape == (3, ckpt.cfg.affinity_buckets - 2) and (np.diff(edges, axis=1) >= 0).all()
    buckets = ckpt.cfg.affinity_buckets
    assert not np.allclose(edges, -1 + 2 * np.arange(1, buckets - 1) / (buckets - 1))  # not the equal widths


def test_fresh_posts_are_ranked_by_their_content(trained: dict[str, Any]) -> None:
    report = evaluate_module.evaluate(trained["out"], trained["log"], posts_path=trained["posts"])
    model, popularity = report["metrics"]["model"], report["metrics"]["popularity"]
    # No held-out post was ever trained on and authors carry no signal: only content can rank them.
    assert model["auc"]["favorite"] > 0.75 > popularity["auc"]["favorite"]
    assert model["recall100"] > popularity["recall100"]


def test_a_content_checkpoint_needs_the_posts_file(trained: dict[str, Any], capsys) -> None:
    assert evaluate_module.main(["--checkpoint", str(trained["out"]), "--data", str(trained["log"])]) == 1
    assert "posts file" in capsys.readouterr().err


def test_posts_file_format(tmp_path: Path) -> None:
    post = parse_post(b'{"post_id": 5, "text": "hi", "extra": 1}', 1)
    assert post == PostRecord(5, "hi")  # defaults, unknown fields ignored
    for line, reason in [
        (b"{", "not valid JSON"),
        (b'{"text": "x"}', "missing 'post_id'"),
        (b'{"post_id": 0, "text": "x"}', "'post_id' must be an integer >= 1"),
        (b'{"post_id": 1, "text": 3}', "'text' must be a string"),
        (b'{"post_id": 1, "text": "x", "media": "gif"}', "'media' must be one of"),
        (b'{"post_id": 1, "text": "x", "created_at_ms": -1}', "'created_at_ms'"),
    ]:
        with pytest.raises(PostsFormatError, match=reason):
            parse_post(line, 7)
    path = tmp_path / "posts.jsonl"
    write_posts(path, [PostRecord(1, "a", "photo", 2, 3), PostRecord(4, "", repost_of_post_id=1)])
    assert [json.loads(line)["post_id"] for line in path.read_text().splitlines()] == [1, 4]
    assert list(iter_posts(path))[1].repost_of_post_id == 1


def test_posts_give_missing_creation_times() -> None:
    lines = [Impression(1, 5, 2, 100, "home_for_you", ()), Impression(1, 6, 2, 100, "home_for_you", (), None, 7)]
    filled = with_creation_times(lines, [PostRecord(5, "x", created_at_ms=40), PostRecord(6, "y", created_at_ms=1)])
    assert [imp.post_created_at_ms for imp in filled] == [40, 7]  # the log's own time wins

"""`foryou trainer` reading the post log: content for a model that reads it, bad records skipped and counted."""

import dataclasses

import orjson

from foryou import trainer_metrics as metrics
from foryou.trainer import StreamTrainer, _apply_post_log
from phoenix.content import load_encoder
from phoenix.online import OnlineContent, OnlineTrainer
from phoenix.train import TrainOptions
from tests.phoenix.test_online import TINY
from topics.schemas import Engagement
from topics.schemas import Impression as ServedImpression


class Message:
    def __init__(self, value: object) -> None:
        self._value = orjson.dumps(value) if not isinstance(value, bytes) else value

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value


def test_post_log_creates_give_content_and_bad_ones_are_counted_not_fatal() -> None:
    encoder = load_encoder()
    cfg = dataclasses.replace(TINY, content_dim=encoder.dim, content_encoder=encoder.encoder_id)
    content = OnlineContent(cfg, encoder, None)
    stream = StreamTrainer(OnlineTrainer(cfg, TrainOptions(progress=False), content=content), 1000, 10**12)
    invalid = metrics.invalid_records.labels("post-log")
    before = invalid._value.get()
    create = {"type": "create", "post_id": 5, "author_id": 2, "created_at_ms": 1, "text": "bread", "media": "photo"}
    _apply_post_log([
        Message({**create, "post_id": 4, "media": "gif"}),  # a media kind the encoder does not know
        Message({"type": "create", "post_id": 6}),  # fields missing
        Message(b"not json"),
        Message(create),
        Message({**create, "post_id": 7, "text": "", "repost_of_post_id": 5, "repost_of_user_id": 2}),
    ], stream)
    assert invalid._value.get() == before + 3
    assert set(stream.posts) == {5, 7}
    vectors, _ = content.table().lookup([5, 7, 4], 0)
    assert vectors[0].any() and (vectors[1] == vectors[0]).all() and not vectors[2].any()  # a repost: its original


def test_an_engagement_read_before_its_impression_joins_it_within_the_grace() -> None:
    stream = StreamTrainer(OnlineTrainer(TINY, TrainOptions(progress=False)), 60_000, 10**12)
    unjoined = metrics.unjoined_engagements._value.get()
    favorite = Engagement(user_id=1, post_id=5, author_id=2, action="favorite", surface="home", ts_ms=1_010)
    stray = Engagement(user_id=1, post_id=6, author_id=2, action="favorite", surface="home", ts_ms=1_020)
    stream.on_engagement(favorite, read_at_ms=2_000)  # the topics are fetched apart: its impression comes later
    stream.on_engagement(stray, read_at_ms=2_000)  # never served
    stream.on_impression(
        ServedImpression(request_id="r1", user_id=1, post_id=5, author_id=2, rank=0, score=0.5, served_at_ms=1_000),
        read_at_ms=2_100,
    )
    stream.tick(2_200)
    assert metrics.unjoined_engagements._value.get() == unjoined  # the stray one is still within its grace
    stream.tick(2_000 + stream.early_grace_ms)
    assert metrics.unjoined_engagements._value.get() == unjoined + 1  # only the stray one
    (line,) = stream.joiner.close_windows(2_100 + 60_000)
    assert line.actions == {"favorite"}

"""Content-encoder benchmark: cost per post, memory, and whether topically similar posts are nearer.

    foryou bench content [--posts N] [--batch B] [--full-posts M] [--out-dir DIR]

Records (bench/results/content.json):
- content.embed.per_post_us: the static encoder (`phoenix.content`) on N posts of 12-30 words in batches of
  B, wall time per post (what ingest pays); content.embed.full_encoder_per_post_us: the full MiniLM-L6
  forward on M of them (batches of 32, padded to the longest), for comparison.
- content.table_bytes (the distilled table in memory) and content.store_bytes_per_post (float16 vector).
- content.topic_nn_accuracy for both encoders: over 48 hand-written posts on 8 topics (6 each, plain
  English, none using the world's vocabulary), the share whose nearest other post (cosine) is on the same
  topic (chance 5/47).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from foryou.benchmarks import RESULTS_DIR, record, write_results
from phoenix import content

TOPIC_POSTS = {
    "football": [
        "What a finish, the striker buried it in the ninetieth minute",
        "Our keeper saved two penalties and we are through to the semi final",
        "The manager was sacked after five straight defeats",
        "Transfer window rumours: the club wants a new centre back",
        "Derby day tomorrow, the whole town is wearing blue",
        "Offside again? The referee needs glasses",
    ],
    "cooking": [
        "Slow roasted tomatoes with garlic and olive oil, so simple",
        "My grandmother's dumpling recipe finally written down",
        "Tried baking bread without a scale, it came out like a brick",
        "Curry night: toasted cumin, coriander and a lot of chilli",
        "Best way to caramelise onions is patience and low heat",
        "Homemade pizza dough needs a long cold proof",
    ],
    "elections": [
        "Polls open at seven, bring your ID to vote",
        "The candidate dodged every question in last night's debate",
        "Turnout in the district was the highest in decades",
        "Parliament passed the budget by a narrow margin",
        "Campaign ads are everywhere on television this week",
        "The opposition leader called for a recount",
    ],
    "programming": [
        "Spent the whole day chasing a null pointer in the parser",
        "Rewrote the service in Rust and memory use dropped by half",
        "Code review tip: small pull requests get merged faster",
        "Our database migration failed because of a missing index",
        "Finally understood how the garbage collector pauses work",
        "The unit tests pass locally but the build fails on the server",
    ],
    "weather": [
        "Heavy rain and flood warnings for the coast tonight",
        "First snow of the winter, the roads are a mess",
        "Record heat today, stay hydrated and find some shade",
        "Thunderstorms rolling in from the west this afternoon",
        "The fog is so thick I cannot see across the street",
        "Forecast says sunshine all weekend after a grey week",
    ],
    "space": [
        "The rocket launch was delayed by high winds at the pad",
        "New telescope images show a galaxy forming stars",
        "Astronauts completed a six hour spacewalk on the station",
        "The rover found signs of ancient water on Mars",
        "A comet will be visible to the naked eye next month",
        "The lunar lander touched down near the south pole",
    ],
    "music": [
        "Their new album sounds nothing like the old records",
        "Front row at the concert, my ears are still ringing",
        "Learning guitar chords at forty, fingers hurt",
        "The orchestra played the symphony without a conductor",
        "This song has been stuck in my head for three days",
        "Festival line up announced and the headliner is a surprise",
    ],
    "pets": [
        "The puppy chewed through another charging cable",
        "Our cat sleeps in the sink and nobody knows why",
        "Adopted an old dog from the shelter, best decision ever",
        "Vet says the parrot is healthy but needs more toys",
        "The kitten discovered the Christmas tree",
        "Walked the dog in the rain and now the hallway smells",
    ],
}


def _posts(n: int, rng: np.random.Generator) -> list[str]:
    words = " ".join(p for posts in TOPIC_POSTS.values() for p in posts).split()
    return [" ".join(rng.choice(words, size=int(rng.integers(12, 31)))) for _ in range(n)]


def topic_nn_accuracy(vectors: np.ndarray, labels: np.ndarray) -> float:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return float((labels[sims.argmax(1)] == labels).mean())


def _full_encoder(texts: list[str], batch: int = 32) -> tuple[np.ndarray, float]:
    tokenizer, weights = content.load_sentence_encoder()
    tokenizer.enable_padding()
    tokenizer.enable_truncation(content.MAX_TOKENS)
    out, seconds = [], 0.0
    for start in range(0, len(texts), batch):
        encoded = tokenizer.encode_batch(texts[start : start + batch])
        ids = np.array([e.ids for e in encoded], np.int32)
        mask = np.array([e.attention_mask for e in encoded], bool)
        content.bert_mean_pooled(weights, ids, mask).block_until_ready()  # compile this shape first
        began = time.perf_counter()
        out.append(np.asarray(content.bert_mean_pooled(weights, ids, mask).block_until_ready()))
        seconds += time.perf_counter() - began
    return np.concatenate(out), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench content", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5_000, help="posts per encode call (a post-log batch)")
    parser.add_argument("--full-posts", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where content.json goes")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    encoder = content.load_encoder()
    texts = _posts(args.posts, rng)
    media = ["none"] * len(texts)
    encoder.encode(texts[: args.batch], media[: args.batch])  # warm
    began = time.perf_counter()
    for start in range(0, len(texts), args.batch):
        encoder.encode(texts[start : start + args.batch], media[start : start + args.batch])
    static_us = (time.perf_counter() - began) / len(texts) * 1e6
    _, full_seconds = _full_encoder(texts[: args.full_posts])
    full_us = full_seconds / args.full_posts * 1e6
    sentences = [p for posts in TOPIC_POSTS.values() for p in posts]
    labels = np.repeat(np.arange(len(TOPIC_POSTS)), [len(p) for p in TOPIC_POSTS.values()])
    static_acc = topic_nn_accuracy(encoder.encode(sentences, ["none"] * len(sentences))[:, : content.TEXT_DIM], labels)
    full_acc = topic_nn_accuracy(_full_encoder(sentences)[0], labels)
    note = "2-core machine shared with other jobs (noisy); one run"
    common = {"encoder": content.ENCODER_ID, "note": note}
    records = [
        record(
            "content.embed.per_post_us",
            "wall_us_per_post",
            static_us,
            "us",
            None,
            posts=args.posts,
            batch=args.batch,
            words="12-30",
            **common,
        ),
        record(
            "content.embed.full_encoder_per_post_us",
            "wall_us_per_post",
            full_us,
            "us",
            None,
            posts=args.full_posts,
            batch=32,
            model="all-MiniLM-L6-v2 (6 layers, 384)",
            **common,
        ),
        record("content.table_bytes", "bytes", encoder.table_bytes, "bytes", None, **common),
        record(
            "content.store_bytes_per_post", "bytes", 2 * content.CONTENT_DIM, "bytes", None, dtype="float16", **common
        ),
        record(
            "content.topic_nn_accuracy",
            "accuracy",
            static_acc,
            "ratio",
            None,
            encoder_kind="static",
            posts=len(sentences),
            topics=len(TOPIC_POSTS),
            chance=5 / 47,
            **common,
        ),
        record(
            "content.topic_nn_accuracy.full_encoder",
            "accuracy",
            full_acc,
            "ratio",
            None,
            encoder_kind="full MiniLM-L6",
            posts=len(sentences),
            topics=len(TOPIC_POSTS),
            **common,
        ),
    ]
    path = write_results("content", records, args.out_dir)
    for entry in records:
        print(f"{entry['name']:42} {entry['value']:12.3f} {entry['unit']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

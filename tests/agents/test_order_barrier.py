import asyncio

import pytest

from agents.order_barrier import IngestProgress, OrderBarrier, TopicPartition

ENG0, ENG1, SOC0 = ("engagement-events", 0), ("engagement-events", 1), ("social-graph-events", 0)


class FakeBroker:
    def __init__(self, ends: dict[TopicPartition, tuple[int, int]]) -> None:
        self.ends = ends
        self.committed: dict[TopicPartition, int] = {}
        self.committed_queries = 0

    async def watermarks(self) -> dict[TopicPartition, tuple[int, int]]:
        return dict(self.ends)

    async def committed_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.committed_queries += 1
        return {tp: self.committed.get(tp, -1) for tp in tps}


def barrier(broker: FakeBroker, progress: IngestProgress) -> OrderBarrier:
    return OrderBarrier(
        watermarks=broker.watermarks, committed=broker.committed_offsets, progress=progress, poll_s=0.001
    )


def test_passes_at_once_when_local_ingest_is_past_every_end() -> None:
    broker = FakeBroker({ENG0: (0, 5), SOC0: (0, 2)})
    progress = IngestProgress()
    progress.advance([("engagement-events", 0, 4), ("social-graph-events", 0, 1)])
    asyncio.run(barrier(broker, progress).wait())
    assert broker.committed_queries == 0


def test_empty_or_trimmed_partitions_need_nothing() -> None:
    broker = FakeBroker({ENG0: (0, 0), ENG1: (7, 7)})
    asyncio.run(barrier(broker, IngestProgress()).wait())
    assert broker.committed_queries == 0


def test_waits_for_another_worker_to_commit_past_the_end() -> None:
    broker = FakeBroker({ENG0: (0, 5), ENG1: (0, 3)})
    progress = IngestProgress()
    progress.advance([("engagement-events", 0, 4)])  # ENG0 ours and done; ENG1 another worker's

    async def main() -> None:
        waiting = asyncio.ensure_future(barrier(broker, progress).wait())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        broker.committed[ENG1] = 2  # not yet past offset 2
        await asyncio.sleep(0.05)
        assert not waiting.done()
        broker.committed[ENG1] = 3
        await asyncio.wait_for(waiting, 1.0)

    asyncio.run(main())


def test_records_arriving_after_the_snapshot_are_not_waited_for() -> None:
    broker = FakeBroker({ENG0: (0, 2)})
    progress = IngestProgress()

    async def main() -> None:
        waiting = asyncio.ensure_future(barrier(broker, progress).wait())
        await asyncio.sleep(0.01)
        broker.ends[ENG0] = (0, 100)  # later records: not part of this request's past
        progress.advance([("engagement-events", 0, 1)])
        await asyncio.wait_for(waiting, 1.0)

    asyncio.run(main())


@pytest.mark.parametrize("offsets", [[3, 1, 2], [1, 2, 3]])
def test_progress_only_moves_forward(offsets: list[int]) -> None:
    progress = IngestProgress()
    progress.advance(("t", 0, o) for o in offsets)
    assert progress.forwarded == {("t", 0): 4}

"""The worker's Kafka consumer: Faust's, with offsets that never run ahead of the records agents processed.

Faust (0.15.3) commits a source partition up to the first offset that is neither acknowledged by an agent nor
in a "gap" (offsets its fetch loop jumped over, taken to hold no record: compacted away, transaction markers).
Our forced-rejoin chaos test (tests/integration/test_chaos.py: a worker frozen past its session timeout three
times under load) lost feed requests this way, their offsets committed and no answer ever sent (a run of
consecutive requests around a rejoin; 37 of 553 in one run). Read in faust/transport/consumer.py and
faust/streams.py:

1. A rejoin revokes every partition and forgets their committed offsets until the seek that ends the
   rebalance; meanwhile the commit timer still runs, and with no committed offset it commits from the lowest
   acknowledged offset, over whatever below it was never processed.
2. While a rebalance is under way, streams skip the events they dequeue (flow suspended, or an older
   generation) and acknowledge them, unprocessed; committed as in 1, or before the seek, they are never read
   again.
3. A record fetched before a rebalance or seek can be delivered after it: `getmany` reads the generation only
   once the fetch has returned, Faust's recovery seeks while the flow runs (for the changelogs), and a record
   whose delivery waited (a full stream buffer, a commit during an outage) through the rebalance goes on. Its
   offset becomes the read offset, ahead of the committed offset the seek went back to: the records read
   again from there are dropped as already read, and the hole before it is recorded as a gap.
4. A delivery cut short by a rebalance (`wait_first(callback, suspend_flow)`) still moves the read offset.
5. The gap recorded before a record includes the record itself ([read + 1, offset]), so it counts as
   acknowledged before any agent has seen it.
6. A committed offset names the next record to read, yet `_new_offset` commits an acknowledged run starting
   one past it (`min(acked) - committed > 1`), over the record at the committed offset; after a seek the read
   offset is set to the committed offset where the loop takes it for the last record read; gaps are clamped
   to start one past the committed offset.

`GapSafeConsumer` keeps Faust's design (acknowledgements, gaps, periodic commits), its bookkeeping exact:
- between a revocation and the seek that follows it, a partition commits nothing and takes no
  acknowledgement; an acknowledgement counts only in the generation that delivered the record (records
  processed before a rejoin are read again and processed again: idempotent updates, answered-request ids);
- every seek (start and end) and every revocation starts a new positions epoch; a record fetched in an
  earlier epoch is not delivered, and when such records were held back while the flow runs, the partitions
  are sought back to their committed offsets (`foryou_consumer_stale_records_total` counts them);
- a partition's read offset is the last record handed to the agents in this epoch (after a seek: the offset
  before the committed one), and moves only when a record is handed over;
- a gap is the offsets strictly between two records read in one epoch, never below the committed offset;
- a commit never passes an offset that is neither acknowledged nor in a gap (`next_commit`).
Changelog partitions (table recovery and standbys: never acknowledged nor committed) are read as Faust does.
A partition with no committed offset yet (a new group's first commit interval) starts where Faust's
auto.offset.reset puts it, as before.

`install(app)` makes the app's transport create this consumer (before the app creates its consumer).
"""

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode import ServiceT

from agents import metrics


def next_commit(acked: Iterable[int], gaps: Iterable[tuple[int, int]], committed: int | None) -> int | None:
    """The offset to commit (the next record to read): the end of the run of offsets, from `committed`, each
    acknowledged or in a gap (`[begin, end)` intervals). None when that does not move past `committed`.
    Without a committed offset the run starts at the lowest acknowledged offset (Faust's rule)."""
    done = set(acked)
    if not done:
        return None
    start = committed if committed is not None else min(done)
    intervals = sorted(gaps)
    position = start
    while True:
        if position in done:
            position += 1
            continue
        covering = next((end for begin, end in intervals if begin <= position < end), None)
        if covering is None:
            break
        position = covering
    return position if position > start else None


def gap_between(last_read: int | None, offset: int, committed: int | None) -> tuple[int, int] | None:
    """The offsets skipped between the last record read and the record at `offset` ([begin, end)), never below
    the committed offset; None when there are none (or nothing was read yet in this epoch)."""
    if last_read is None:
        return None
    begin = last_read + 1 if committed is None else max(last_read + 1, committed)
    return (begin, offset) if begin < offset else None


def last_read_before(committed: int | None) -> int | None:
    """The read offset after a seek to `committed`: the record before it (None when there is none)."""
    return committed - 1 if committed is not None and committed > 0 else None


class GapSafeConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer with the offset bookkeeping above; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._positions_epoch = 0
        self._fetch_epoch = 0  # the epoch the current batch was fetched in
        self._unsought: set[TP] = set()  # revoked, and not yet sought back to their committed offsets

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._positions_epoch += 1
        self._unsought.update(revoked)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        # A new epoch as the seek starts and again once it is done: a fetch that overlapped it (Faust seeks
        # while recovery runs the flow) may hold records from either side, so it is held back whole.
        self._positions_epoch += 1
        unsought = set(self._unsought)
        committed = await self.seek_to_committed()
        self._positions_epoch += 1
        self._unsought -= unsought
        for tp, offset in committed.items():
            self._read_offset[ensure_TP(tp)] = last_read_before(offset)
        self._committed_offset.update(
            {ensure_TP(tp): offset if offset else None for tp, offset in committed.items() if offset is not None}
        )

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list]:
        self._fetch_epoch = self._positions_epoch
        return await super()._getmany(active_partitions, timeout)

    def ack(self, message: Message) -> bool:
        if message.tp in self._unsought or message.generation_id != self.app.consumer_generation_id:
            # Delivered before the last rebalance: read again from the committed offset once sought, so its
            # acknowledgement must not count (Faust also acknowledges the records its streams skip then).
            with ack_lock:
                message.acked = True
                self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    def _new_offset(self, tp: TP) -> int | None:
        if tp in self._unsought:
            return None  # its committed offset is unknown until the seek that follows a revocation
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        gaps = self._gap[tp]
        offset = next_commit(acked, ((interval.begin, interval.end) for interval in gaps), committed)
        floor = offset if offset is not None else committed
        if floor is not None:  # forget what is committed (or about to be)
            self._acked_index[tp].difference_update(o for o in acked if o < floor)
            acked[:] = [o for o in acked if o >= floor]
            gaps.chop(0, floor)
        return offset

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's fetch loop (the Fetcher service runs it), with the epoch and read-offset rules above."""
        fetcher_stopped = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (self._stopped.is_set() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                stale = 0
                if not self.should_stop:
                    async for tp, message in self.getmany(timeout=1.0):
                        if not self.app.topics.acks_enabled_for(message.topic):
                            await self._deliver_changelog(tp, message)
                        elif self._fetch_epoch != self._positions_epoch:
                            stale += 1
                        elif not await self._deliver(tp, message):
                            break  # the flow stopped (a rebalance): a seek follows before it resumes
                    self.diag.unset_flag(CONSUMER_FETCHING)
                if stale:
                    metrics.consumer_stale_records.inc(stale)
                    self.log.info("held back %d records fetched before a rebalance or seek; reading again", stale)
                    if self.flow_active:
                        await self.perform_seek()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, tp: TP, message: Message) -> bool:
        """Hand a source record to the agents; False when the flow stopped before it was handed over."""
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
            if self._fetch_epoch != self._positions_epoch:
                return False  # a rebalance during the commit
        last_read = self._read_offset[tp]
        if last_read is not None and message.offset <= last_read:
            return True  # already handed over in this epoch
        gap = gap_between(last_read, message.offset, self._committed_offset[tp])
        if gap is not None:
            gaps = self._gap[tp]
            gaps.addi(*gap)
            gaps.merge_overlaps()
        handing = self.callback(message)
        outcome = await self.wait_first(handing, self.suspend_flow.wait())
        if handing not in outcome.done:
            return False
        if self._fetch_epoch == self._positions_epoch:
            self._read_offset[tp] = message.offset
        return True

    async def _deliver_changelog(self, tp: TP, message: Message) -> None:
        """A changelog record, as Faust delivers it (table recovery keeps its own offsets)."""
        last_read = self._read_offset[tp]
        if last_read is None or message.offset >= last_read:
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            self._read_offset[tp] = message.offset


def install(app: faust.App) -> None:
    """Make `app` create a `GapSafeConsumer`: call before the app starts (it creates its consumer then)."""
    transport = app.transport
    if not isinstance(transport, aiokafka_driver.Transport):
        raise TypeError(f"GapSafeConsumer extends the aiokafka driver's consumer, not {type(transport).__name__}'s")
    if app._consumer is not None:  # type: ignore[attr-defined]
        raise RuntimeError("the app already created its consumer")
    transport.Consumer = GapSafeConsumer  # type: ignore[misc]

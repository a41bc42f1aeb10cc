"""Running CPU-bound model calls off the event loop.

Phoenix scoring and retrieval are synchronous and CPU-heavy. They run in a worker thread so that the event
loop keeps serving other requests meanwhile: XLA and faiss release the GIL while they compute, so the loop
is held only for the short Python parts of the call. By default that thread is asyncio's default executor
(`asyncio.to_thread`); a caller may pass its own executor, e.g. a single-thread pool so that concurrent
requests queue for the model instead of oversubscribing the cores.
"""

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(executor: Executor | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if executor is None:
        return await asyncio.to_thread(fn, *args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))

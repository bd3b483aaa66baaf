"""Async methods for the Django backends on a thread pool of their own.

Django's BaseCache implements `aget`, `aset`, ... as
`sync_to_async(self.get, thread_sensitive=True)`: every async cache call of
the process queues on one thread, so twenty concurrent `await cache.aget()`
take twenty round trips end to end. The client is thread-safe and releases
the GIL for the whole network call, so here each async method runs its
blocking twin on a small pool owned by the backend module instead (OPTIONS
`ASYNC_THREADS`, default 16, shared by every cache of the process that uses
the same size). A pool made before `fork()` is never used in the child: its
threads do not exist there, a new one is made.
"""

import asyncio
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.cache.backends.base import DEFAULT_TIMEOUT

DEFAULT_ASYNC_THREADS = 16

_pools = {}
_pools_lock = threading.Lock()


def executor(threads=DEFAULT_ASYNC_THREADS):
    """The process's pool of `threads` threads for async cache calls."""
    pid = os.getpid()
    with _pools_lock:
        found = _pools.get(threads)
        if found is None or found[0] != pid:
            found = (pid, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="elasticache-async"))
            _pools[threads] = found
        return found[1]


class AsyncMethods:
    """Mixin: Django's async cache API over the blocking methods, on
    `executor(self._async_threads)`."""

    _async_threads = DEFAULT_ASYNC_THREADS

    async def _in_pool(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor(self._async_threads), functools.partial(fn, *args, **kwargs))

    async def aadd(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return await self._in_pool(self.add, key, value, timeout, version)

    async def aget(self, key, default=None, version=None):
        return await self._in_pool(self.get, key, default, version)

    async def aset(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return await self._in_pool(self.set, key, value, timeout, version)

    async def atouch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return await self._in_pool(self.touch, key, timeout, version)

    async def adelete(self, key, version=None):
        return await self._in_pool(self.delete, key, version)

    async def aget_many(self, keys, version=None):
        return await self._in_pool(self.get_many, keys, version)

    async def aget_or_set(self, key, default, timeout=DEFAULT_TIMEOUT, version=None):
        # `default` may be a callable that must run in the caller's context
        # only when needed; get_or_set's own logic is kept by running it whole.
        return await self._in_pool(self.get_or_set, key, default, timeout, version)

    async def ahas_key(self, key, version=None):
        return await self._in_pool(self.has_key, key, version)

    async def aincr(self, key, delta=1, version=None):
        return await self._in_pool(self.incr, key, delta, version)

    async def adecr(self, key, delta=1, version=None):
        return await self._in_pool(self.decr, key, delta, version)

    async def aset_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return await self._in_pool(self.set_many, data, timeout, version)

    async def adelete_many(self, keys, version=None):
        return await self._in_pool(self.delete_many, keys, version)

    async def aclear(self):
        return await self._in_pool(self.clear)

    async def aclose(self, **kwargs):
        return None

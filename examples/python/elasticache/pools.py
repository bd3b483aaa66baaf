"""pylibmc's client pools: `ClientPool` and `ThreadMappedPool`.

An elasticache.Client is already safe to share between threads (the library
pools connections per node), so new code needs neither; these exist so that
code written for pylibmc, where a client is not thread-safe, runs unchanged.
Each pooled client is a `clone()` of the one given: its own connections,
the same servers and behaviors.
"""

import threading
from contextlib import contextmanager
from queue import Queue


class ClientPool(Queue):
    """A fixed set of clones handed out one at a time:

        pool = ClientPool(mc, 4)
        with pool.reserve() as mc:
            mc.set("k", "v")

    `reserve(block=False)` raises queue.Empty when every client is taken
    (block=True waits for one to come back)."""

    def __init__(self, mc=None, n_slots=0):
        super().__init__(n_slots)
        if mc is not None and n_slots:
            self.fill(mc, n_slots)

    @contextmanager
    def reserve(self, block=False):
        """A client of the pool for the length of the `with` block."""
        mc = self.get(block)
        try:
            yield mc
        finally:
            self.put(mc)

    def fill(self, mc, n_slots):
        """Put `n_slots` clones of `mc` in the pool."""
        for _ in range(n_slots):
            self.put(mc.clone())


class ThreadMappedPool(dict):
    """One clone of `master` per thread, made on the thread's first
    `reserve()` and kept until the thread calls `relinquish()`."""

    def __new__(cls, master):  # noqa: ARG003 - pylibmc's signature
        return super().__new__(cls)

    def __init__(self, master):
        super().__init__()
        self.master = master

    @property
    def current_key(self):
        return threading.current_thread().ident

    @contextmanager
    def reserve(self):
        """This thread's client for the length of the `with` block."""
        key = self.current_key
        mc = self.pop(key, None)
        if mc is None:
            mc = self.master.clone()
        try:
            yield mc
        finally:
            self[key] = mc

    def relinquish(self):
        """Drop (and return) this thread's client; call it before the thread ends."""
        return self.pop(self.current_key, None)

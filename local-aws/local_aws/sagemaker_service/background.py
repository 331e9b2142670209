"""The service's background threads: a loop that reconciles state, and a child's watch on its parent."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PARENT_CHECK_S = 1.0


class ReconcileLoop:
    """A daemon thread calling ``tick`` every ``poll_interval_s``, or at once after ``notify``.

    A round that raises is logged and the next one runs as usual: one bad row must not end the loop.
    """

    def __init__(self, name: str, tick: Callable[[], None], poll_interval_s: float) -> None:
        self.name = name
        self._tick = tick
        self._poll_interval_s = poll_interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Run a round now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Let the round in progress finish and run no more."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("the %s failed a round; trying again", self.name)
            self._wake.wait(self._poll_interval_s)
            self._wake.clear()


def exit_with_parent(parent_pid: int) -> None:
    """End this process once ``parent_pid`` is no longer its parent (the parent was killed outright)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()

"""Work the server does without a request: advancing the clock on a timer."""

from __future__ import annotations

import abc
import logging
import threading
from typing import Any

from ..errors import QaflowError

log = logging.getLogger("qaflow.server")


class Worker(abc.ABC):
    """A daemon thread that runs ``tick`` until stopped; ``tick`` returns how long to wait before the next."""

    name = "qaflow-worker"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.tick()
            except Exception as exc:  # a store that is down, say: log it and try again later
                message = exc.message if isinstance(exc, QaflowError) else f"{type(exc).__name__}: {exc}"
                log.error("qaflow serve: %s failed: %s", self.name, message, exc_info=not isinstance(exc, QaflowError))
                wait = self.retry_after()
            self._wake.wait(wait)
            self._wake.clear()

    @abc.abstractmethod
    def tick(self) -> float:
        """Do one round of the work; return the seconds to wait before the next."""

    def retry_after(self) -> float:
        return 5.0


class AdvanceTicker(Worker):
    """``engine.advance(now)`` every ``every`` seconds, by the server's clock. Safe with several servers on
    one PostgreSQL database (each due item is claimed by one of them and fired once)."""

    name = "qaflow-advance"

    def __init__(self, engine: Any, every: float) -> None:
        super().__init__()
        self.engine = engine
        self.every = every

    def tick(self) -> float:
        fired = self.engine.advance(self.engine.clock.now())
        if fired:
            log.info("qaflow serve: advance fired %d deadline breach(es) and scheduled start(s)", len(fired))
        return self.every

    def retry_after(self) -> float:
        return self.every

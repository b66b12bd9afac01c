"""Files read by a thread while the caller does something else (starts Ray).

:func:`read_files_ahead` starts reading a portfolio's bar files at once;
:func:`raybt.engine.intake.take_bars` takes the frames (``frames=``) as if it
had read them itself, errors included. Light to import (no pandas, numba or
Ray): the reading thread imports the loaders itself.
"""

from __future__ import annotations

import queue
import threading


class ReadAhead:
    """The items of an iterator, taken by a thread of their own up to ``limit`` ahead of the consumer.

    The files of a portfolio are read this way while Ray starts (:class:`~raybt.engine.PortfolioBacktester`
    on the Ray engine): reading and checking them needs no Ray, and Ray's start is mostly waiting.
    An error the iterator raises is raised to the consumer where its item would have come.
    :meth:`close` stops the thread (after the item it is reading) and closes the iterator.
    """

    _END = object()

    def __init__(self, iterator, limit: int = 8):
        self._queue: queue.Queue = queue.Queue(maxsize=max(int(limit), 1))
        self._stop = threading.Event()
        self._done = False  # the end, an error or close() reached: nothing more comes
        self._thread = threading.Thread(target=self._read, args=(iterator,), name="raybt-read-ahead", daemon=True)
        self._thread.start()

    def _offer(self, entry) -> bool:
        """Put ``entry`` once there is room; False if closed meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, iterator) -> None:
        try:
            for item in iterator:
                if not self._offer((True, item)):
                    return
            self._offer((False, self._END))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._offer((False, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            if self._stop.is_set():  # closed: an item put as close() drained the queue goes too
                self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        ok, item = self._queue.get()
        if ok:
            return item
        self._done = True
        if item is self._END:
            raise StopIteration
        raise item

    def close(self) -> None:
        """Stop reading; the frames read and not taken are dropped (here, and by the thread as it ends)."""
        self._done = True
        self._stop.set()
        self._drain()


def read_files_ahead(configs, *, universe=None, timeframe: str | None = None, echo=None) -> ReadAhead:
    """The bars of asset configs (:func:`~raybt.universe.iter_asset_bars`) read by a thread from now on,
    for :func:`~raybt.engine.intake.take_bars` (``frames=``). The thread imports the loaders (pandas,
    pyarrow) itself. Memory stays bounded: at most 8 frames wait in the queue, one more in the thread's
    hand and up to 4 in :func:`~raybt.universe.iter_asset_bars`'s readers."""
    configs = list(configs)

    def frames():
        from raybt.universe import iter_asset_bars

        yield from iter_asset_bars(configs, universe, timeframe, echo=echo)

    return ReadAhead(frames())

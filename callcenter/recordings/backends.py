"""Which store a recording lives in: new recordings go to the configured one, each row is read from its own.

Every row carries ``storage_backend``; after ``CC_RECORDING_STORAGE`` changes from local to s3 (or back), the
recordings stored before still play, because the API looks the row's backend up here instead of assuming the
current one. The local store is always registered (it is a directory); the S3 store whenever ``CC_S3_BUCKET``
is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from callcenter.config import Settings
from callcenter.logs import get_logger
from callcenter.recordings.storage import LocalRecordingStore, RecordingStore

log = get_logger(__name__)


class RecordingStores:
    def __init__(self, primary: RecordingStore, *others: RecordingStore, retry_seconds: float = 5.0,
                 max_retry_seconds: float = 300.0) -> None:
        self.primary = primary
        self._by_backend = {store.backend: store for store in (*others, primary)}
        self._retry = (retry_seconds, max_retry_seconds)
        self._tasks: list[asyncio.Task[None]] = []

    def get(self, backend: str) -> RecordingStore | None:
        return self._by_backend.get(backend)

    def __iter__(self) -> Iterator[RecordingStore]:
        return iter(self._by_backend.values())

    async def start(self) -> None:
        """Prepare the stores that need it (the S3 bucket's rules) in the background: calls must not wait for S3,
        and a store that is unreachable now is prepared once it answers."""
        for store in self:
            prepare = getattr(store, "prepare", None)
            if prepare is not None:
                self._tasks.append(asyncio.create_task(self._prepare(store.backend, prepare),
                                                       name=f"recordings-prepare-{store.backend}"))

    async def _prepare(self, backend: str, prepare: Callable[[], Awaitable[object]]) -> None:
        first, ceiling = self._retry

        def failed(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.error("recording.store_prepare_failed", backend=backend, error=str(error)[-500:],
                      error_type=type(error).__name__,
                      retry_in=state.next_action.sleep if state.next_action is not None else None)

        # Until it succeeds or the platform stops (cancellation is not an Exception, so it is never retried).
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(Exception), before_sleep=failed,
                                           wait=wait_exponential(multiplier=first, max=ceiling)):
            with attempt:
                await prepare()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


def build_stores(settings: Settings) -> RecordingStores:
    local = LocalRecordingStore(settings.recordings_dir)
    if settings.s3 is None:
        return RecordingStores(local)
    from callcenter.recordings.s3 import S3RecordingStore  # boto3 is only loaded when S3 is configured

    s3 = S3RecordingStore.from_settings(settings.s3, retention_days=settings.recording_retention_days)
    return RecordingStores(s3, local) if settings.recording_storage == "s3" else RecordingStores(local, s3)


# Where recordings' audio is read from, by each row's backend.
RECORDINGS = web.AppKey("recording_stores", RecordingStores)

"""Synthesis behind the server: a bounded set of open requests, worker threads, and cancellable jobs.

**Sharing the models.** Each voice is loaded once (`VoiceSet`). Every worker thread has its own
`mlms_keras.synthesis.Synthesizer` per voice: the synthesizers share the voice's Keras models (read-only calls
through `tf.function`), while the state that must not be shared, the stateful streaming model that carries the
LSTM state from chunk to chunk and the stage timer, belongs to one worker. A worker runs one job at a time, so no
two requests ever touch the same streaming state.

**Bounded.** At most `workers + max_queue` requests are open at once (admitted, and their response not finished):
`admit` refuses the next one with `QueueFullError` (the app answers 503 with `Retry-After`). A request stays open
until its response has been sent, so the audio buffered for slow readers is bounded too.

**Cancellable.** A job carries a cancel flag; the worker checks it before it starts and between streamed audio
chunks, and stops synthesising once it is set (a client that disconnected). A one-pass request that has started
runs to its end (its text is at most `max_text_characters`).

Chunks go from the worker thread to the request's event loop through an `asyncio.Queue`
(`loop.call_soon_threadsafe`), so the request handler awaits audio without blocking the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import queue
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras.server.voices import TTSRequest

if TYPE_CHECKING:
    from mlms_keras.server.options import ServerOptions
    from mlms_keras.server.voices import VoiceSet

__all__ = ["Job", "JobCancelledError", "QueueFullError", "SynthesisEngine"]

logger = logging.getLogger("mlms_keras.server")
_END = object()  # the last item of a job's chunk queue
_RECENT_JOBS = 20  # jobs in the moving average behind Retry-After


class QueueFullError(RuntimeError):
    """Every slot is taken; `retry_after` is the advised wait in whole seconds."""

    def __init__(self, capacity: int, retry_after: int) -> None:
        super().__init__(f"the server is busy ({capacity} requests open); retry in {retry_after} s")
        self.retry_after = int(retry_after)


class JobCancelledError(RuntimeError):
    """The job was cancelled (its client went away, or the server is stopping) before its audio was complete."""


class Job:
    """One admitted request: its audio chunks arrive through `next_chunk` as a worker synthesises them.

    Attributes:
        id: a number unique in this server process (the `X-Request-Id` header).
        request: the checked request.
        state: `"queued"`, `"running"`, `"done"`, `"cancelled"` or `"failed"`.
        samples: audio samples synthesised so far.
        skipped: sentences the synthesizer skipped (text it cannot say), known once the job is over.
        sample_rate: Hz of the voice.
    """

    def __init__(self, job_id: int, request: TTSRequest, sample_rate: int, loop: asyncio.AbstractEventLoop) -> None:
        self.id = job_id
        self.request = request
        self.sample_rate = int(sample_rate)
        self.state = "queued"
        self.samples = 0
        self.skipped = 0
        self.admitted = time.perf_counter()
        self.started: float | None = None
        self.finished: float | None = None
        self._cancelled = threading.Event()
        self._loop = loop
        self._items: asyncio.Queue = asyncio.Queue()

    @property
    def cancelled(self) -> bool:
        """True once `cancel` was called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Asks the worker to stop this job at its next chunk (or not to start it)."""
        self._cancelled.set()

    async def next_chunk(self) -> np.ndarray | None:
        """The next (samples,) float32 chunk; None after the last. Re-raises the worker's error, if any."""
        item = await self._items.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def _emit(self, item: object) -> None:
        # A closed event loop (the server stopped) raises RuntimeError: nobody waits for this item then.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)

    def describe(self) -> dict:
        """A JSON-able summary for `/health`."""
        now = time.perf_counter()
        return {
            "id": self.id,
            "state": self.state,
            "voice": self.request.voice,
            "language": self.request.language,
            "stream": self.request.stream,
            "audio_seconds": round(self.samples / self.sample_rate, 3),
            "seconds_open": round(now - self.admitted, 3),
        }


class SynthesisEngine:
    """Worker threads that synthesise admitted requests, each with its own synthesizers over the shared voices.

    Args:
        voices: the loaded voices.
        options: `workers`, `max_queue` (with `workers`, the bound on open requests), `chunk_frames`,
            `jit_streaming` and `warm_up` are used.
    """

    def __init__(self, voices: VoiceSet, options: ServerOptions) -> None:
        from mlms_keras.synthesis import Synthesizer

        self.voices = voices
        self.options = options
        chunking = {} if options.chunk_frames is None else {"chunk_frames": options.chunk_frames}
        self._synthesizers = [
            {
                # strict=False: a sentence the frontend cannot say is skipped with a warning (the synthesizer's
                # policy); a text with no sentence it can say still fails before any audio (a 400).
                name: Synthesizer(voice, jit_streaming=options.jit_streaming, strict=False, **chunking)
                for name, voice in voices.voices.items()
            }
            for _ in range(options.workers)
        ]
        self._pending: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._open: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._recent_seconds: list[float] = []
        self.counts = dict.fromkeys(("admitted", "rejected", "done", "cancelled", "failed"), 0)

    # Life cycle ---------------------------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Traces every worker's models once (a short sentence per voice), in the calling thread."""
        for synthesizers in self._synthesizers:
            for synthesizer in synthesizers.values():
                language = synthesizer.languages[0]
                synthesizer.warm_up(language, synthesizer.default_speaker(language))

    def start(self) -> None:
        """Starts the worker threads (daemons: a stuck synthesis never keeps the process alive)."""
        for index in range(self.options.workers):
            thread = threading.Thread(target=self._work, args=(index,), name=f"mlms-synthesis-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancels the open jobs and stops the workers after their current chunk."""
        with self._lock:
            jobs = list(self._open.values())
        for job in jobs:
            job.cancel()
        for _ in self._threads:
            self._pending.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    # Admission ----------------------------------------------------------------------------------------------------
    def admit(self, request: TTSRequest) -> Job:
        """Opens a job for `request` and queues it for a worker (call from the server's event loop).

        Raises:
            QueueFullError: `workers + max_queue` requests are already open.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if len(self._open) >= self.options.capacity:
                self.counts["rejected"] += 1
                raise QueueFullError(self.options.capacity, self._retry_after())
            job = Job(next(self._ids), request, self.voices.voices[request.voice].sample_rate, loop)
            self._open[job.id] = job
            self.counts["admitted"] += 1
        self._pending.put(job)
        return job

    def release(self, job: Job) -> None:
        """Closes `job` once its response is over (sent, failed or abandoned): cancels it if it is still being
        synthesised and frees its slot."""
        job.cancel()
        with self._lock:
            self._open.pop(job.id, None)

    def _retry_after(self) -> int:
        """Whole seconds until a slot is likely free: the mean recent job time x waiting jobs / workers."""
        mean = sum(self._recent_seconds) / len(self._recent_seconds) if self._recent_seconds else 1.0
        waiting = sum(job.state == "queued" for job in self._open.values()) + 1
        return max(1, math.ceil(mean * waiting / self.options.workers))

    def health(self) -> dict:
        """What `/health` reports: workers, capacity, open requests (each job's state), and counts."""
        with self._lock:
            jobs = [job.describe() for job in self._open.values()]
            counts = dict(self.counts)
        return {
            "workers": self.options.workers,
            "alive_workers": sum(thread.is_alive() for thread in self._threads),
            "capacity": self.options.capacity,
            "open": len(jobs),
            "queued": sum(job["state"] == "queued" for job in jobs),
            "running": sum(job["state"] == "running" for job in jobs),
            "jobs": jobs,
            "counts": counts,
        }

    # Workers ------------------------------------------------------------------------------------------------------
    def _work(self, index: int) -> None:
        synthesizers = self._synthesizers[index]
        while True:
            job = self._pending.get()
            if job is None:
                return
            self._run(job, synthesizers[job.request.voice])

    @staticmethod
    def _pieces(job: Job, synthesizer):
        """The audio pieces of a job: streamed chunks, or the one-pass waveform."""
        request = job.request
        if request.stream:
            yield from synthesizer.stream(request.text, request.language, request.speaker)
        else:
            yield synthesizer.synthesize(request.text, request.language, request.speaker)

    def _run(self, job: Job, synthesizer) -> None:
        job.started = time.perf_counter()
        outcome = "cancelled"
        pieces = self._pieces(job, synthesizer)
        try:
            if not job.cancelled:
                job.state = "running"
                for piece in pieces:
                    job.samples += len(piece)
                    job._emit(np.asarray(piece, np.float32))
                    if job.cancelled:
                        break
                else:
                    outcome = "done"
        except Exception as error:  # noqa: BLE001  (the request gets the error; the worker keeps serving)
            outcome = "failed"
            if not isinstance(error, ValueError):
                logger.exception("request %d failed", job.id)
            job._emit(error)
        finally:
            pieces.close()  # stops the synthesizer's generator at once when cancelled
            job.skipped = len(synthesizer.skipped) if job.state == "running" else 0
            job.finished = time.perf_counter()
            job.state = outcome
            if outcome != "failed":
                job._emit(_END if outcome == "done" else JobCancelledError(f"request {job.id} was cancelled"))
            with self._lock:
                self.counts[outcome] += 1
                if outcome == "done":
                    self._recent_seconds = (self._recent_seconds + [job.finished - job.started])[-_RECENT_JOBS:]
            if outcome == "cancelled":
                logger.info(
                    "request %d cancelled after %.2f s of audio (client gone)", job.id, job.samples / job.sample_rate
                )

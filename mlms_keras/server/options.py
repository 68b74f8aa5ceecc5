"""The settings of `mlms serve` (`ServerOptions`), checked once when the server starts (no TensorFlow here, so
that bad options and a taken port are reported at once)."""

from __future__ import annotations

import dataclasses

from mlms_keras.utils.validation import check_integer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerOptions"]

DEFAULT_HOST = "127.0.0.1"  # loopback only unless the user says otherwise
DEFAULT_PORT = 5002  # the port Coqui's tts-server uses, so clients written for it find ours


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """How the speech server runs.

    Attributes:
        voices: voice sources loaded at start-up: built-in names (`mlms zoo list`), voice folders or `file://` /
            `https://` URLs (`mlms_keras.zoo.load_voice`). Empty: every built-in voice. Requests can only pick
            among these, by name.
        host: interface to bind (`127.0.0.1`: this machine only).
        port: TCP port; 0 picks a free one (the ready callback gets the real URL).
        workers: synthesis threads; each has its own `Synthesizer` (and stateful streaming model) per voice,
            while all share the voices' loaded models.
        max_queue: requests that may wait for a worker. A request beyond `workers + max_queue` open requests
            gets 503 with `Retry-After`, so memory stays bounded however many clients call.
        max_text_characters: longest text accepted (413 beyond).
        chunk_frames: frames per streamed chunk (a multiple of 4; 48 = 240 ms of audio); None: the synthesizer's
            default (`mlms_keras.synthesis.synthesizer.DEFAULT_CHUNK_FRAMES`).
        jit_streaming: compile the streaming model's time loops with XLA (`Synthesizer(jit_streaming=...)`): on
            by default, since it halves the time to the first audio chunk (`benchmarks/bench_server.py`), and the
            compilation happens during the warm-up.
        warm_up: trace every model once per worker before accepting requests, so that the first request is fast.
    """

    voices: tuple[str, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    max_queue: int = 8
    max_text_characters: int = 1000
    chunk_frames: int | None = None
    jit_streaming: bool = True
    warm_up: bool = True

    def __post_init__(self) -> None:
        check_integer("port", self.port, minimum=0)
        if self.port > 65535:
            raise ValueError(f"`port` must be at most 65535. Received: port={self.port}")
        check_integer("workers", self.workers)
        check_integer("max_queue", self.max_queue, minimum=0)
        check_integer("max_text_characters", self.max_text_characters)
        check_integer("chunk_frames", self.chunk_frames, optional=True)
        if not self.host:
            raise ValueError("`host` is empty: give an interface address such as 127.0.0.1")
        object.__setattr__(self, "voices", tuple(str(voice) for voice in self.voices))

    @property
    def capacity(self) -> int:
        """Open requests the server accepts at once (running plus waiting)."""
        return self.workers + self.max_queue

"""Starting the speech server: load the voices, warm the workers up, bind the socket, serve with uvicorn."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import uvicorn

from mlms_keras.server.options import ServerOptions

__all__ = ["bind_socket", "serve"]

logger = logging.getLogger("mlms_keras.server")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: a free port the system picks).

    Raises:
        OSError: the address cannot be bound (in use, not an address of this machine), naming it.
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise OSError(f"cannot use --host {host}: {error.strerror or error}") from error
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}; pick another --port") from error
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, calling `on_ready(url)` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, url: str, on_ready: Callable[[str], None] | None) -> None:
        super().__init__(config)
        self._ready = (url, on_ready)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        url, on_ready = self._ready
        if on_ready is not None and not self.should_exit:
            on_ready(url)


def serve(options: ServerOptions, on_ready: Callable[[str], None] | None = None) -> None:
    """Runs the speech server until it is interrupted (SIGINT or SIGTERM: open requests are cancelled).

    Loads the voices once (`VoiceSet.load`), builds `options.workers` synthesis workers and warms them up, binds
    `options.host:options.port`, then serves the app of `mlms_keras.server.app` with uvicorn (one process: the
    workers are threads that share the loaded models).

    Args:
        options: the server's settings.
        on_ready: called with the server's URL (`http://127.0.0.1:5002`) once it accepts requests.

    Raises:
        ValueError, FileNotFoundError: a voice that cannot be loaded, or bad options.
        OSError: the address cannot be bound.
    """
    sock = bind_socket(options.host, options.port)  # first: a taken port fails before TensorFlow loads
    engine = None
    try:
        from mlms_keras.server.app import create_app
        from mlms_keras.server.engine import SynthesisEngine
        from mlms_keras.server.voices import VoiceSet

        voices = VoiceSet.load(options.voices, options.max_text_characters)
        engine = SynthesisEngine(voices, options)
        if options.warm_up:
            engine.warm_up()
        config = uvicorn.Config(
            create_app(voices, engine),
            log_config=None,  # the caller configures logging; our access log replaces uvicorn's
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        engine.start()
        logger.info(
            "voices %s, %d worker(s), up to %d open requests",
            ", ".join(voices.names),
            options.workers,
            options.capacity,
        )
        _Server(config, _url(sock), on_ready).run(sockets=[sock])
    finally:
        if engine is not None:
            engine.stop()
        sock.close()

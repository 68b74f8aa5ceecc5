"""`mlms serve`: the speech server (HTTP API and web page) over zoo voices."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms serve`."""
    parser = subparsers.add_parser(
        "serve",
        help="serve zoo voices over HTTP: an API (streaming audio) and a web page",
        description=(
            "A speech server: GET /api/voices, GET or POST /api/tts (WAV or raw PCM, streamed with stream=true),\n"
            "GET /health, and a web page at /. Needs the server extra: pip install 'mlms-keras[server]'.\n"
            "Voices load once at start-up; requests pick among them by name only.\n\n"
            "examples:\n"
            "  mlms serve --voice teacher-small\n"
            "  mlms serve --voice teacher-small --voice voices/sv --workers 2 --port 8080\n"
            '  curl -o hi.wav "http://127.0.0.1:5002/api/tts?text=Bonjour.&lang=fr"'
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--voice",
        action="append",
        default=[],
        help="a built-in voice name, voice folder or URL to serve; repeat for several (default: every built-in voice)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=5002, help="TCP port (default 5002; 0 picks a free one)")
    parser.add_argument("--workers", type=int, default=1, help="synthesis threads (default 1)")
    parser.add_argument(
        "--max-queue", type=int, default=8, help="requests that may wait for a worker before 503 (default 8)"
    )
    parser.add_argument(
        "--max-text-chars", type=int, default=1000, help="longest text a request may send (default 1000; 413 beyond)"
    )
    parser.add_argument(
        "--chunk-frames", type=int, default=None, help="frames per streamed chunk, 5 ms each (default 48)"
    )
    parser.add_argument(
        "--no-jit", action="store_true", help="run the streaming model as a graph loop instead of compiling it with XLA"
    )
    parser.add_argument("--no-warm-up", action="store_true", help="skip tracing the models before serving")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(handler=run)


def _ready(url: str) -> None:
    print(f"mlms serve: listening on {url} (open it in a browser; Ctrl+C stops)", flush=True)


def run(args: argparse.Namespace) -> int:
    """Loads the voices and serves until interrupted."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise OSError(
            f"the server needs the `server` extra ({error.name} is missing): pip install 'mlms-keras[server]'"
        ) from error
    from mlms_keras.server.options import ServerOptions
    from mlms_keras.server.run import serve

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    options = ServerOptions(
        voices=tuple(args.voice),
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_queue=args.max_queue,
        max_text_characters=args.max_text_chars,
        chunk_frames=args.chunk_frames,
        jit_streaming=not args.no_jit,
        warm_up=not args.no_warm_up,
    )
    try:
        serve(options, on_ready=_ready)
    except KeyboardInterrupt:  # Ctrl+C (uvicorn re-raises it after a graceful shutdown) is how a server stops
        print("mlms serve: stopped", file=sys.stderr)
    return 0

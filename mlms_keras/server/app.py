"""The HTTP application (Starlette): the API, the web page, and one access-log line per request.

Routes:

- `GET /`: the web page (`static/index.html`, with its script and style under `/static/`, all served from memory:
  the page needs no network beyond this server).
- `GET /api/voices`: the voices with their languages (and each language's default speaker) and speakers.
- `GET` or `POST /api/tts`: `text`, `voice`, `lang`, `speaker`, `format` (`wav` or `pcm`), `stream`
  (`mlms_keras.server.voices.PARAMETERS`). GET takes them in the query string; POST in a JSON object or a
  form-encoded body. Audio comes back as a WAV file or raw 16-bit little-endian mono PCM (`X-Sample-Rate`). With
  `stream=true` the audio is sent in chunks as `Synthesizer.stream` makes them (chunked transfer); the status
  line is sent with the first chunk, so a request that fails before any audio still gets its error status.
- `GET /health`: workers, capacity, the open requests and counts.

Errors are JSON (`{"error": ..., "status": ..., "valid_...": [...]}`): 400 bad parameters or text, 404, 405, 413
text too long, 415 body type, 503 busy (with `Retry-After`), 500 a synthesis failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from importlib import resources
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mlms_keras.server.engine import Job, QueueFullError, SynthesisEngine
from mlms_keras.server.voices import RequestError, VoiceSet
from mlms_keras.server.wire import pcm16, wav_header

__all__ = ["AccessLog", "STATIC_FILES", "create_app"]

access_logger = logging.getLogger("mlms_keras.server.access")

#: Files of the web page: name -> media type. Read once from the package; a request can name only these.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_FORM_TYPES = ("application/json", "application/x-www-form-urlencoded")


class _ClientGone(Exception):
    """The client disconnected while its request waited for audio."""


class AccessLog:
    """ASGI middleware: one log line per HTTP request, after its response is over.

    The line has the client, method, path (never the query string: it holds the user's text), status, latency,
    time to the first body byte, and for synthesis requests the request id, voice, language, speaker, text length,
    audio duration and real-time factor (latency / audio duration).
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        record = {"status": 500, "first_byte": None}

        async def logged_send(message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            elif message["type"] == "http.response.body" and message.get("body") and record["first_byte"] is None:
                record["first_byte"] = time.perf_counter() - start
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            self._log(scope, record, time.perf_counter() - start)

    @staticmethod
    def _log(scope, record: dict, seconds: float) -> None:
        client = scope.get("client") or ("-", 0)
        first_byte = "-" if record["first_byte"] is None else f"{1000 * record['first_byte']:.1f}ms"
        line = (
            f'{client[0]}:{client[1]} "{scope["method"]} {scope["path"]}" {record["status"]} '
            f"latency={1000 * seconds:.1f}ms first_byte={first_byte}"
        )
        job = scope.get("state", {}).get("job")
        if job is not None:
            audio = job.samples / job.sample_rate
            rtf = f"{seconds / audio:.3f}" if audio else "-"
            request = job.request
            line += (
                f" audio={audio:.3f}s rtf={rtf} id={job.id} state={job.state} voice={request.voice} "
                f"lang={request.language} speaker={request.speaker} chars={len(request.text)} "
                f"format={request.format} stream={str(request.stream).lower()} skipped={job.skipped}"
            )
        access_logger.info(line)


def _error(status: int, message: str, headers: dict | None = None, **fields) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, **fields}, status_code=status, headers=headers)


async def _params(request: Request, max_body_bytes: int) -> dict:
    """The request's parameters: the query string, then (POST) a JSON object or a form-encoded body on top."""
    params = dict(request.query_params)
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for piece in request.stream():
        body += piece
        if len(body) > max_body_bytes:
            raise RequestError(413, f"the request body is over {max_body_bytes} bytes")
    if not body:
        return params
    if content_type == "application/json":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(400, f"the JSON body does not parse: {error}") from error
        if not isinstance(data, dict):
            raise RequestError(400, "the JSON body must be an object of parameters")
        return {**params, **data}
    if content_type == "application/x-www-form-urlencoded":
        return {**params, **dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))}
    raise RequestError(415, f"unsupported body type {content_type or '(none)'!r}", content_types=list(_FORM_TYPES))


async def _until_disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(awaitable, watcher: asyncio.Future):
    """The result of `awaitable`, or `_ClientGone` if `watcher` (the disconnect watch) finishes first."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    raise _ClientGone


class _JobResponse(StreamingResponse):
    """A streamed synthesis response that frees its job's slot however the response ends."""

    def __init__(self, content, engine: SynthesisEngine, job: Job, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._engine, self._job = engine, job

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._engine.release(self._job)


def create_app(voices: VoiceSet, engine: SynthesisEngine) -> Starlette:
    """The ASGI application (wrapped in `AccessLog`) for `voices` synthesised by `engine` (already started)."""
    package = resources.files("mlms_keras.server") / "static"
    static = {name: (package / name).read_bytes() for name in STATIC_FILES}
    max_body_bytes = 4 * voices.max_text_characters + 4096  # UTF-8 text plus the other parameters

    async def page(request: Request) -> Response:
        return Response(static["index.html"], media_type=STATIC_FILES["index.html"])

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return _error(404, f"no static file {name!r}")
        return Response(static[name], media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    async def list_voices(request: Request) -> Response:
        return JSONResponse(
            {
                "voices": voices.describe(),
                "default_voice": voices.names[0],
                "max_text_characters": voices.max_text_characters,
            }
        )

    async def health(request: Request) -> Response:
        report = engine.health()
        healthy = report["alive_workers"] == report["workers"]
        body = {"status": "ok" if healthy else "degraded", "voices": voices.names, **report}
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def tts(request: Request) -> Response:
        try:
            tts_request = voices.parse(await _params(request, max_body_bytes))
            job = engine.admit(tts_request)
        except RequestError as error:
            return JSONResponse(error.body(), status_code=error.status)
        except QueueFullError as error:
            return _error(503, str(error), headers={"Retry-After": str(error.retry_after)})
        request.state.job = job  # for the access log
        sample_rate = job.sample_rate
        headers = {
            "X-Request-Id": str(job.id),
            "X-Sample-Rate": str(sample_rate),
            "X-Sample-Format": "s16le",
            "X-Channels": "1",
            "X-Voice": tts_request.voice,
            "X-Language": tts_request.language,
            "X-Speaker": tts_request.speaker,
            "Cache-Control": "no-store",
        }
        media_type = "audio/wav" if tts_request.format == "wav" else "application/octet-stream"
        watcher = asyncio.ensure_future(_until_disconnected(request))
        released = False
        try:
            first = await _unless_gone(job.next_chunk(), watcher)
            if tts_request.stream:
                if first is None:
                    first = []

                async def chunks():
                    header = wav_header(sample_rate) if tts_request.format == "wav" else b""
                    yield header + pcm16(first)
                    while (chunk := await job.next_chunk()) is not None:
                        yield pcm16(chunk)

                released = True  # the response releases the job from here on
                headers["X-Accel-Buffering"] = "no"
                return _JobResponse(chunks(), engine, job, headers=headers, media_type=media_type)
            pieces = [] if first is None else [first]
            while (chunk := await _unless_gone(job.next_chunk(), watcher)) is not None:
                pieces.append(chunk)
            body = b"".join(pcm16(piece) for piece in pieces)
            samples = len(body) // 2
            headers["X-Audio-Seconds"] = f"{samples / sample_rate:.3f}"
            headers["X-Skipped-Sentences"] = str(job.skipped)
            if tts_request.format == "wav":
                body = wav_header(sample_rate, samples) + body
            return Response(body, media_type=media_type, headers=headers)
        except _ClientGone:
            return Response(status_code=499)  # nobody reads it; the access log records the abandoned request
        except ValueError as error:  # no sentence of the text can be said (the synthesizer's text checks)
            return _error(400, f"the {tts_request.language} frontend cannot say the text: {error}")
        except Exception as error:  # noqa: BLE001  (a synthesis bug: the client gets a 500, the log the traceback)
            return _error(500, f"synthesis failed: {type(error).__name__}: {error}")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if not released:
                engine.release(job)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return _error(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    routes = [
        Route("/", page),
        Route("/static/{name}", static_file),
        Route("/api/voices", list_voices),
        Route("/api/tts", tts, methods=["GET", "POST"]),
        Route("/health", health),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return AccessLog(app)

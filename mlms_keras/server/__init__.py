"""A speech server: `mlms serve`, an HTTP API and a web page over the zoo voices (the `server` extra).

Run it with `mlms serve --voice teacher-small` (binds 127.0.0.1:5002) and open http://127.0.0.1:5002/ , or call
the API:

    curl -o hello.wav "http://127.0.0.1:5002/api/tts?text=Hello+there.&lang=en-us"
    curl -N "http://127.0.0.1:5002/api/tts?text=Salut.&lang=fr&format=pcm&stream=true" | aplay -f S16_LE -r 22050

The modules: `options` (`ServerOptions`), `voices` (the voices loaded at start-up, request checks with errors that
list the valid values), `engine` (worker threads, the bounded set of open requests, cancellable jobs), `wire`
(PCM and WAV bytes), `app` (the Starlette routes, the access log), `run` (`serve`: uvicorn on a bound socket),
and `static/` (the page). `docs/server.md` documents the API, the page and the measured load behaviour.
"""

from mlms_keras.server.options import DEFAULT_HOST, DEFAULT_PORT, ServerOptions
from mlms_keras.utils.lazy import lazy_exports

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerOptions", "create_app", "serve"]

# The app and the runner import Starlette and uvicorn (the optional `server` extra): only when used.
__getattr__, __dir__ = lazy_exports(__name__, {"create_app": "mlms_keras.server.app", "serve": "mlms_keras.server.run"})

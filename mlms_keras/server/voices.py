"""The voices a server speaks with, and the checks that turn request parameters into a `TTSRequest`.

Voices are loaded once, at start-up, from the sources the operator names (built-in names, folders, URLs:
`mlms_keras.zoo.load_voice`). A request names a voice only by its name, which is looked up in this fixed table:
nothing a request sends ever reaches the file system or the download cache.

Every refusal is a `RequestError` with the HTTP status and a JSON body that says what was wrong and lists the
valid values (voices, languages, speakers, formats), so a client can correct itself without reading the docs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from mlms_keras.languages import get_language
from mlms_keras.synthesis import Synthesizer

if TYPE_CHECKING:
    from mlms_keras.zoo import Voice

__all__ = ["AUDIO_FORMATS", "PARAMETERS", "RequestError", "TTSRequest", "VoiceSet"]

#: `format` values: a WAV file, or raw PCM (signed 16-bit little-endian, mono; the rate in `X-Sample-Rate`).
AUDIO_FORMATS = ("wav", "pcm")
#: The parameters `/api/tts` understands.
PARAMETERS = ("text", "voice", "lang", "speaker", "format", "stream")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class RequestError(ValueError):
    """A request the server refuses: `status` (400, 413, ...) and a JSON body (`error` plus the valid values)."""

    def __init__(self, status: int, message: str, **valid: list) -> None:
        super().__init__(message)
        self.status = int(status)
        self.valid = valid

    def body(self) -> dict:
        """The JSON body: `{"error": message, "status": status, "valid_<what>": [...]}`."""
        return {
            "error": str(self),
            "status": self.status,
            **{f"valid_{key}": value for key, value in self.valid.items()},
        }


@dataclasses.dataclass(frozen=True)
class TTSRequest:
    """One checked synthesis request.

    Attributes:
        text: the text, stripped; at most the server's `max_text_characters`. Whether the frontend can say it is
            the synthesizer's to decide (it cleans the text, and skips a sentence it cannot say): a text with no
            sentence it can say fails before any audio, and the request gets 400 then.
        voice: the voice's name (a key of `VoiceSet`).
        language: a language code of that voice.
        speaker: a speaker of that voice (explicit, or the language's default speaker).
        format: `"wav"` or `"pcm"`.
        stream: send audio chunks as they are synthesised (`Synthesizer.stream`) instead of after one pass.
    """

    text: str
    voice: str
    language: str
    speaker: str
    format: str
    stream: bool


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise RequestError(400, f"`{name}` must be true or false, got {value!r}", **{name: ["true", "false"]})


class VoiceSet:
    """The voices loaded at start-up, by name, in the order they were named (the first is the default voice).

    Args:
        voices: loaded `mlms_keras.zoo.Voice` objects with distinct names.
        max_text_characters: longest text a request may send (413 beyond).
    """

    def __init__(self, voices: Iterable[Voice], max_text_characters: int = 1000) -> None:
        self.voices: dict[str, Voice] = {}
        self._tables: dict[str, Synthesizer] = {}  # languages, speakers and default speakers (no model calls)
        for voice in voices:
            if voice.name in self.voices:
                raise ValueError(
                    f"two voices are named {voice.name!r} ({self.voices[voice.name].folder} and {voice.folder}); "
                    "a request picks a voice by name, so give each --voice a distinct voice"
                )
            self.voices[voice.name] = voice
            self._tables[voice.name] = Synthesizer(voice)
        if not self.voices:
            raise ValueError("no voice to serve: name one with --voice (a built-in name or a voice folder)")
        self.max_text_characters = int(max_text_characters)

    @classmethod
    def load(cls, sources: Iterable[str], max_text_characters: int = 1000) -> VoiceSet:
        """Loads each source with `mlms_keras.zoo.load_voice` (every built-in voice when `sources` is empty)."""
        from mlms_keras.zoo import list_voices, load_voice

        sources = list(sources) or [entry["name"] for entry in list_voices()]
        return cls([load_voice(source) for source in sources], max_text_characters)

    @property
    def names(self) -> list[str]:
        """Voice names, the default first."""
        return list(self.voices)

    def default_speaker(self, voice: str, language: str) -> str:
        """The speaker of a request that names none: `Synthesizer.default_speaker` (a native speaker of
        `language`, else the voice's first speaker)."""
        return self._tables[voice].default_speaker(language)

    def describe(self) -> list[dict]:
        """What `GET /api/voices` returns: each voice with its sample rate, languages (code, name, default
        speaker) and speakers (name, native language, gender)."""
        described = []
        for name, voice in self.voices.items():
            tables = self._tables[name]
            languages = [
                {"code": code, "name": get_language(code).display_name, "default_speaker": tables.default_speaker(code)}
                for code in tables.languages
            ]
            speakers = [
                {"name": speaker, "language": voice.speakers[speaker].get("language"), "gender": entry.get("gender")}
                for speaker, entry in ((speaker, voice.speakers[speaker]) for speaker in tables.speakers)
            ]
            described.append(
                {
                    "name": name,
                    "description": voice.metadata.get("description", ""),
                    "sample_rate": int(voice.sample_rate),
                    "languages": languages,
                    "speakers": speakers,
                }
            )
        return described

    def parse(self, params: Mapping[str, object]) -> TTSRequest:
        """Checks the parameters of one `/api/tts` request (`PARAMETERS`).

        Raises:
            RequestError: 400 for an unknown parameter, voice, language, speaker, format or `stream` value, and for
            missing or empty text; 413 for text longer than `max_text_characters`. The body lists the valid values.
        """
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise RequestError(400, f"unknown parameter(s) {', '.join(unknown)}", parameters=list(PARAMETERS))
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RequestError(400, "`text` is missing or empty: give at least one word to synthesise")
        text = text.strip()
        if len(text) > self.max_text_characters:
            raise RequestError(
                413,
                f"`text` has {len(text)} characters; this server accepts at most {self.max_text_characters}. "
                "Split it and send the parts one by one.",
            )
        name = params.get("voice") or self.names[0]
        voice = self.voices.get(name) if isinstance(name, str) else None
        if voice is None:
            raise RequestError(400, f"unknown voice {name!r}", voices=self.names)
        tables = self._tables[name]
        languages = list(tables.languages)
        language = params.get("lang") or (languages[0] if len(languages) == 1 else None)
        if language not in voice.languages:
            problem = "`lang` is missing" if language is None else f"voice {name!r} does not speak {language!r}"
            raise RequestError(400, f"{problem}; pick one of the voice's languages", languages=languages)
        speaker = params.get("speaker") or tables.default_speaker(language)
        if speaker not in voice.speakers:
            raise RequestError(400, f"voice {name!r} has no speaker {speaker!r}", speakers=list(tables.speakers))
        audio_format = str(params.get("format") or "wav").lower()
        if audio_format not in AUDIO_FORMATS:
            raise RequestError(400, f"unknown format {audio_format!r}", formats=list(AUDIO_FORMATS))
        stream = _flag("stream", params.get("stream", False))
        return TTSRequest(text, name, language, speaker, audio_format, stream)

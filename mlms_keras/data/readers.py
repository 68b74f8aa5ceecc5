"""Readers for speech corpora in the layouts users already have.

Supported layouts (`read_corpus` tells them apart):

* LJSpeech-style `metadata.csv` (`id|text|normalized_text`, or `id|text`) with audio in `wavs/<id>.wav`.
  The file has no language or speaker column, so `language` must be given; the speaker defaults to the folder's
  name.
* Our teacher-corpus layout: `metadata.csv` with `id|text|language|speaker` and `wavs/<id>.wav`
  (alignments in `labels/<id>.lab`).
* M-AILABS: `<locale>/by_book/<gender>/<speaker>/<book>/metadata.csv` + `wavs/`, and
  `<locale>/by_book/mix/<book>/...` for books read by several speakers (speaker id `mix-<book>`).
* CSS10: `transcript.txt` with `wav_path|original|normalized|duration_s` (paths relative to the corpus folder).

Text: when a line has a normalised text (LJSpeech's third column, CSS10's third column) and it is not empty, it is
used, because it spells out numbers and abbreviations; otherwise the original text.

Bad input never stops a read: a malformed line, an empty or punctuation-only text, an unknown language, a repeated
utterance id, or a missing or unreadable wav file is logged as a warning, recorded in the result's `skipped` list
with the file name and line number, and skipped. Alignments (HTS `.lab` or Praat `.TextGrid`) are found with
`mlms_keras.frontend.labels.find_alignment`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from mlms_keras.frontend.labels import find_alignment
from mlms_keras.languages import LANGUAGE_CODES, get_language

__all__ = [
    "MAILABS_LOCALES",
    "TEACHER_HEADER",
    "CorpusItem",
    "CorpusItems",
    "SkippedLine",
    "read_corpus",
    "read_css10",
    "read_mailabs",
    "read_metadata_csv",
]

logger = logging.getLogger(__name__)

#: M-AILABS locale folder -> our language code. Locales not listed (ru_RU, uk_UA) are reported and skipped.
MAILABS_LOCALES = {
    "en_US": "en-us",
    "en_UK": "en-gb",
    "de_DE": "de",
    "fr_FR": "fr",
    "it_IT": "it",
    "es_ES": "es",
    "pl_PL": "pl",
}
TEACHER_HEADER = ("id", "text", "language", "speaker")


@dataclasses.dataclass
class CorpusItem:
    """One utterance of a corpus.

    Attributes:
        utterance_id: unique id within the corpus (the wav file's stem).
        wav_path: absolute path of the audio file.
        text: the text spoken (normalised text when the corpus has one).
        language: our language code (see `mlms_keras.languages`), e.g. `"en-us"`.
        speaker: speaker id, unique within the corpus.
        alignment_path: HTS `.lab` or Praat `.TextGrid` found beside the wav, or `None`.
        gender: `"female"`, `"male"`, `"mix"` when the corpus says so (M-AILABS), else `None`.
    """

    utterance_id: str
    wav_path: Path
    text: str
    language: str
    speaker: str
    alignment_path: Path | None = None
    gender: str | None = None


@dataclasses.dataclass(frozen=True)
class SkippedLine:
    """A line (or file) left out of a corpus read, and why.

    Attributes:
        path: the file holding the bad line (or the bad folder).
        line_number: 1-based line number, or `None` when the problem is not one line.
        reason: what is wrong and what to do about it.
    """

    path: Path
    line_number: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line_number}" if self.line_number is not None else f"{self.path}"
        return f"{where}: {self.reason}"


class CorpusItems(list):
    """A list of `CorpusItem` with the lines that were skipped in `skipped` (a list of
    `SkippedLine`)."""

    def __init__(self, items=(), skipped=()):
        super().__init__(items)
        self.skipped: list[SkippedLine] = list(skipped)

    def _skip(self, path, line_number, reason) -> None:
        entry = SkippedLine(Path(path), line_number, reason)
        logger.warning("Skipping %s", entry)
        self.skipped.append(entry)


def _has_letters(text: str) -> bool:
    return any(character.isalpha() for character in text)


def _text_problem(text: str) -> str | None:
    """Why `text` cannot be an utterance's text (empty, or no letters), or `None`."""
    if not text:
        return "empty text"
    if not _has_letters(text):
        return f"text {text!r} has no letters (punctuation or digits only)"
    return None


def _check_language_argument(language):
    if language is not None:
        get_language(language)  # raises ValueError naming the code and the known ones


def _audio_problem(wav_path: Path, verify_audio: bool) -> str | None:
    """Why `wav_path` cannot be used, or `None`. Reads only the file header."""
    if not wav_path.is_file():
        return f"missing wav file {wav_path}; restore it or remove the line"
    if verify_audio:
        import soundfile

        try:
            info = soundfile.info(str(wav_path))
        except Exception as error:  # libsndfile reports unreadable files with several exception types
            return f"unreadable audio file {wav_path} ({error}); re-export it as WAV"
        if info.frames == 0:
            return f"audio file {wav_path} holds no samples"
    return None


def _read_lines(path: Path, result: CorpusItems):
    """Yield `(line_number, text)` for non-blank lines, reporting lines that are not valid UTF-8."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                result._skip(path, line_number, f"not valid UTF-8 ({error}); save the file as UTF-8")
                continue
            if line_number == 1:
                line = line.lstrip("\ufeff")
            line = line.rstrip("\r\n")
            if line.strip():
                yield line_number, line


def _finish_item(result, seen_ids, path, line_number, item, verify_audio) -> None:
    if item.utterance_id in seen_ids:
        result._skip(path, line_number, f"utterance id {item.utterance_id!r} repeats {seen_ids[item.utterance_id]}")
        return
    problem = _audio_problem(item.wav_path, verify_audio)
    if problem:
        result._skip(path, line_number, problem)
        return
    seen_ids[item.utterance_id] = f"{path}:{line_number}"
    item.alignment_path = find_alignment(item.wav_path)
    result.append(item)


def read_metadata_csv(
    path, language: str | None = None, speaker: str | None = None, verify_audio: bool = True, gender: str | None = None
) -> CorpusItems:
    """Read an LJSpeech-style or teacher-corpus `metadata.csv` (`|`-separated, UTF-8, no quoting).

    The column count of the first data line decides the layout: 2 or 3 columns (`id|text[|normalized_text]`,
    LJSpeech and M-AILABS) or 4 columns (`id|text|language|speaker`, our teacher corpus; a header line with
    exactly these names is allowed). Lines with another column count are skipped and reported. Audio is
    `wavs/<id>.wav` beside the file.

    Args:
        path: the `metadata.csv` file.
        language: language code for files without a language column (required for them). Ignored for 4-column
            files, whose lines carry their own.
        speaker: speaker id for files without a speaker column; defaults to the name of the file's folder.
        verify_audio: also check each wav's header with libsndfile (cheap), not just that the file exists.
        gender: recorded on each item (used by the M-AILABS reader).

    Returns:
        `CorpusItems`: the good utterances in file order, with `.skipped` listing the bad lines.

    Raises:
        ValueError: only for problems with the whole file: it does not exist, or it has no language column and
            `language` was not given.
    """
    path = Path(path).absolute()
    if not path.is_file():
        raise ValueError(f"{path} does not exist; point to the corpus's metadata.csv.")
    _check_language_argument(language)
    wav_folder = path.parent / "wavs"
    default_speaker = speaker if speaker else path.parent.name
    result = CorpusItems()
    seen_ids: dict[str, str] = {}
    column_count = None
    for line_number, line in _read_lines(path, result):
        fields = [field.strip() for field in line.split("|")]
        if column_count is None:
            if len(fields) not in (2, 3, 4):
                result._skip(path, line_number, f"expected 2 to 4 '|'-separated columns, found {len(fields)}")
                continue
            column_count = len(fields)
            if column_count < 4 and language is None:
                raise ValueError(
                    f"{path} has no language column (id|text|normalized_text); pass language=, e.g. 'en-us' for "
                    f"LJSpeech. Known codes: {', '.join(LANGUAGE_CODES)}."
                )
            if column_count == 4 and tuple(field.lower() for field in fields) == TEACHER_HEADER:
                continue
        if len(fields) != column_count:
            result._skip(
                path,
                line_number,
                f"expected {column_count} '|'-separated columns like the first line, found {len(fields)}",
            )
            continue
        utterance_id = fields[0]
        if not utterance_id or "/" in utterance_id or "\\" in utterance_id:
            result._skip(path, line_number, f"utterance id {utterance_id!r} is empty or contains a path separator")
            continue
        if column_count == 4:
            text, line_language, line_speaker = fields[1], fields[2], fields[3]
            if line_language not in LANGUAGE_CODES:
                try:
                    get_language(line_language)  # a language registered at run time is fine
                except ValueError:
                    result._skip(
                        path,
                        line_number,
                        f"unknown language {line_language!r}; known codes: {', '.join(LANGUAGE_CODES)}",
                    )
                    continue
            if not line_speaker:
                result._skip(path, line_number, "empty speaker column")
                continue
        else:
            normalized = fields[2] if column_count == 3 else ""
            text = normalized or fields[1]
            line_language, line_speaker = language, default_speaker
        problem = _text_problem(text)
        if problem:
            result._skip(path, line_number, problem)
            continue
        item = CorpusItem(
            utterance_id, wav_folder / f"{utterance_id}.wav", text, line_language, line_speaker, gender=gender
        )
        _finish_item(result, seen_ids, path, line_number, item, verify_audio)
    if result.skipped:
        logger.warning("%s: read %d utterances, skipped %d lines", path, len(result), len(result.skipped))
    return result


def read_css10(root, language: str, speaker: str | None = None, verify_audio: bool = True) -> CorpusItems:
    """Read a CSS10 corpus folder: `transcript.txt` with `wav_path|original|normalized|duration_s`.

    Args:
        root: the folder holding `transcript.txt`; wav paths in it are relative to this folder.
        language: our language code for the corpus (CSS10 is one language per corpus).
        speaker: speaker id; defaults to `css10-<language>`.
        verify_audio: also check each wav's header with libsndfile.

    Returns:
        `CorpusItems` with `.skipped` listing the bad lines. The utterance id is the wav's stem.

    Raises:
        ValueError: `transcript.txt` is missing or `language` is unknown.
    """
    root = Path(root).absolute()
    transcript = root / "transcript.txt"
    if not transcript.is_file():
        raise ValueError(f"{transcript} does not exist; CSS10 corpora have transcript.txt at their top folder.")
    _check_language_argument(language)
    speaker = speaker or f"css10-{language}"
    result = CorpusItems()
    seen_ids: dict[str, str] = {}
    for line_number, line in _read_lines(transcript, result):
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 4:
            result._skip(
                transcript,
                line_number,
                f"expected 4 '|'-separated columns (wav_path|original|normalized|duration), found {len(fields)}",
            )
            continue
        relative_wav, original, normalized, duration = fields
        try:
            duration_s = float(duration)
        except ValueError:
            result._skip(transcript, line_number, f"duration {duration!r} is not a number of seconds")
            continue
        if not relative_wav or Path(relative_wav).is_absolute() or ".." in Path(relative_wav).parts:
            result._skip(transcript, line_number, f"wav path {relative_wav!r} must be relative to {root}")
            continue
        if not (duration_s > 0):
            result._skip(transcript, line_number, f"duration {duration_s} s is not positive")
            continue
        text = normalized or original
        problem = _text_problem(text)
        if problem:
            result._skip(transcript, line_number, problem)
            continue
        wav_path = root / relative_wav
        item = CorpusItem(wav_path.stem, wav_path, text, language, speaker)
        _finish_item(result, seen_ids, transcript, line_number, item, verify_audio)
    if result.skipped:
        logger.warning("%s: read %d utterances, skipped %d lines", transcript, len(result), len(result.skipped))
    return result


def _mailabs_locale_folders(root: Path) -> list[Path]:
    if (root / "by_book").is_dir():
        return [root]
    return sorted(child for child in root.iterdir() if (child / "by_book").is_dir())


def read_mailabs(root, verify_audio: bool = True) -> CorpusItems:
    """Read an M-AILABS corpus: one locale folder (`en_US/`) or a folder holding several.

    Layout: `<locale>/by_book/<gender>/<speaker>/<book>/metadata.csv` + `wavs/` for `female` and `male`, and
    `<locale>/by_book/mix/<book>/metadata.csv` + `wavs/` for books with several speakers, whose speaker id is
    `mix-<book>`. Locales are mapped with :data:`MAILABS_LOCALES`; other locales are reported in `skipped`.
    Utterance ids must be unique across books; repeats are skipped.

    Returns:
        `CorpusItems` of all books in sorted folder order, with `.skipped` listing bad lines and folders.

    Raises:
        ValueError: no `by_book` folder is found.
    """
    root = Path(root).absolute()
    locale_folders = _mailabs_locale_folders(root) if root.is_dir() else []
    if not locale_folders:
        raise ValueError(
            f"{root} is not an M-AILABS corpus: expected {root}/by_book/ or {root}/<locale>/by_book/ "
            "(e.g. en_US/by_book/female/<speaker>/<book>/metadata.csv)."
        )
    result = CorpusItems()
    seen_ids: dict[str, str] = {}
    for locale_folder in locale_folders:
        language = MAILABS_LOCALES.get(locale_folder.name)
        if language is None:
            result._skip(
                locale_folder,
                None,
                f"M-AILABS locale {locale_folder.name!r} has no language code here; "
                f"known locales: {', '.join(MAILABS_LOCALES)}",
            )
            continue
        books = []  # (gender, speaker, book folder)
        for gender_folder in sorted(p for p in (locale_folder / "by_book").iterdir() if p.is_dir()):
            gender = gender_folder.name
            if gender == "mix":
                books += [
                    (gender, f"mix-{book.name}", book) for book in sorted(gender_folder.iterdir()) if book.is_dir()
                ]
            else:
                for speaker_folder in sorted(p for p in gender_folder.iterdir() if p.is_dir()):
                    books += [
                        (gender, speaker_folder.name, book)
                        for book in sorted(speaker_folder.iterdir())
                        if book.is_dir()
                    ]
        for gender, speaker, book in books:
            metadata = book / "metadata.csv"
            if not metadata.is_file():
                result._skip(book, None, "book folder has no metadata.csv")
                continue
            book_items = read_metadata_csv(
                metadata, language=language, speaker=speaker, verify_audio=verify_audio, gender=gender
            )
            result.skipped.extend(book_items.skipped)
            for item in book_items:
                if item.utterance_id in seen_ids:
                    result._skip(
                        metadata,
                        None,
                        f"utterance id {item.utterance_id!r} repeats one in {seen_ids[item.utterance_id]}",
                    )
                    continue
                seen_ids[item.utterance_id] = str(metadata)
                result.append(item)
    return result


def read_corpus(
    root, language: str | None = None, speaker: str | None = None, verify_audio: bool = True
) -> CorpusItems:
    """Read a corpus folder, detecting its layout.

    Detection order: `transcript.txt` (CSS10, needs `language`), `metadata.csv` (LJSpeech-style, needs
    `language`, or our teacher layout), `by_book/` or `<locale>/by_book/` (M-AILABS).

    Args:
        root: the corpus folder (a `metadata.csv` file path is accepted too).
        language: language code for layouts that do not say it (LJSpeech, CSS10).
        speaker: speaker id for single-speaker layouts (LJSpeech, CSS10).
        verify_audio: also check each wav's header with libsndfile.

    Returns:
        `CorpusItems` with `.skipped`.

    Raises:
        ValueError: the layout is not recognised (the message lists the expected ones), or a needed `language`
            is missing.
    """
    root = Path(root)
    if root.is_file() and root.name == "metadata.csv":
        return read_metadata_csv(root, language=language, speaker=speaker, verify_audio=verify_audio)
    if (root / "transcript.txt").is_file():
        if language is None:
            raise ValueError(f"{root} is a CSS10 corpus (transcript.txt); pass its language, e.g. language='de'.")
        return read_css10(root, language, speaker=speaker, verify_audio=verify_audio)
    if (root / "metadata.csv").is_file():
        return read_metadata_csv(root / "metadata.csv", language=language, speaker=speaker, verify_audio=verify_audio)
    if root.is_dir() and _mailabs_locale_folders(root):
        return read_mailabs(root, verify_audio=verify_audio)
    raise ValueError(
        f"{root}: unrecognised corpus layout. Expected one of: metadata.csv + wavs/ (LJSpeech or the teacher corpus "
        "from `mlms corpus build`), <locale>/by_book/<gender>/<speaker>/<book>/metadata.csv (M-AILABS), or "
        "transcript.txt (CSS10)."
    )

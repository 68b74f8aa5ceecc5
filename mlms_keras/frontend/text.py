"""Text before the frontend: control characters, emoji and symbols, and sentences.

What a user types or pastes often holds characters that are not language:

- **Control characters** (Unicode category Cc other than white space, lone surrogates, the byte-order mark and the
  bidirectional embedding, override and isolate controls) are removed, and the caller warns. libespeak-ng takes
  a C string, so a NUL would otherwise silently end the text there; the others are read as nothing or as noise.
  Tabs and line breaks stay (they are white space).
- **Emoji and symbols** (categories So and Sk, private-use characters, and the joiners, variation selectors,
  skin-tone modifiers, keycap marks and tags that build emoji sequences) are dropped unless `read_symbols`,
  because espeak-ng speaks their Unicode names ("grinning face"). Currency signs (Sc), mathematical signs (Sm),
  punctuation and the degree sign stay: espeak-ng reads them as words with numbers ("5 €", "3 + 4", "20 °C").
- **Sentences**: `split_sentences` cuts a text into pieces the frontend takes in one call.

Example:
    >>> clean_text("Hi\\x00 there 😀!").text
    'Hi there !'
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

__all__ = ["CleanedText", "clean_text", "describe_characters", "has_words", "split_sentences"]

# Format characters that reorder or hide text rather than spell it.
_INVISIBLE_CONTROLS = frozenset(
    "\ufeff" + "".join(map(chr, range(0x202A, 0x202F))) + "".join(map(chr, range(0x2066, 0x206A)))
)
# Parts of emoji sequences: zero-width joiner, variation selectors, combining keycap, tags.
_EMOJI_PARTS = frozenset("\u200d\ufe0e\ufe0f\u20e3" + "".join(map(chr, range(0xE0020, 0xE0080))))
_SYMBOL_CATEGORIES = ("So", "Sk", "Co")
_KEPT_SYMBOLS = frozenset("°")
_SPACES = re.compile(r"[ \u00a0]{2,}")
_SENTENCE_END = re.compile(r"(?<=[.!?…;:])[\"'»”)\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def _is_control(character: str) -> bool:
    category = unicodedata.category(character)
    return (category == "Cc" and not character.isspace()) or category == "Cs" or character in _INVISIBLE_CONTROLS


def _is_symbol(character: str) -> bool:
    if character in _KEPT_SYMBOLS:
        return False
    return unicodedata.category(character) in _SYMBOL_CATEGORIES or character in _EMOJI_PARTS


def describe_characters(characters: str | list[str], limit: int = 5) -> str:
    """`"U+0000 control character, U+1F600 grinning face"`: the distinct characters (at most `limit`)."""
    distinct = list(dict.fromkeys(characters))
    shown = [f"U+{ord(c):04X} {unicodedata.name(c, 'control character').lower()}" for c in distinct[:limit]]
    return ", ".join(shown) + (f" and {len(distinct) - limit} more" if len(distinct) > limit else "")


@dataclasses.dataclass(frozen=True)
class CleanedText:
    """The result of `clean_text`.

    Attributes:
        text: the cleaned text.
        controls: the removed control characters, in order (with repeats).
        symbols: the dropped emoji and symbol characters, in order (with repeats).
    """

    text: str
    controls: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()

    def warnings(self) -> list[str]:
        """One message per kind of removed character (empty when nothing was removed)."""
        messages = []
        if self.controls:
            plural = "s" if len(self.controls) > 1 else ""
            messages.append(
                f"removed {len(self.controls)} control character{plural} ({describe_characters(self.controls)})"
            )
        if self.symbols:
            plural = "s" if len(self.symbols) > 1 else ""
            messages.append(
                f"dropped {len(self.symbols)} symbol{plural} ({describe_characters(self.symbols)}); pass "
                "read_symbols (--read-symbols) to have symbols read out"
            )
        return messages


def clean_text(text: str, read_symbols: bool = False) -> CleanedText:
    """Removes control characters and (unless `read_symbols`) emoji and symbols from `text`.

    A removed character leaves nothing behind, except that runs of spaces it leaves are merged into one.

    Args:
        text: any string.
        read_symbols: keep emoji and symbols (espeak-ng then reads their names).

    Returns:
        `CleanedText` with the text and what was removed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    controls = tuple(c for c in text if _is_control(c))
    symbols = () if read_symbols else tuple(c for c in text if not _is_control(c) and _is_symbol(c))
    if not controls and not symbols:
        return CleanedText(text)
    removed = set(controls) | set(symbols)
    kept = "".join(c for c in text if c not in removed)
    return CleanedText(_SPACES.sub(" ", kept) if symbols else kept, controls, symbols)


def has_words(text: str) -> bool:
    """Whether `text` has a letter or a digit (a piece without one is punctuation: a pause, nothing to say)."""
    return any(character.isalnum() for character in text)


def split_sentences(text: str, max_characters: int | None = None) -> list[str]:
    """Cut a text into sentences of at most `max_characters` (the frontend's limit per call).

    Splits after sentence punctuation (. ! ? … ; :) followed by white space; a longer sentence is cut after
    commas, and a still longer piece at white space (a single word longer than `max_characters` stays whole, and
    the frontend refuses it). Empty pieces are dropped.

    Args:
        text: any text.
        max_characters: longest piece (default: `mlms_keras.frontend.espeak.MAX_TEXT_CHARACTERS`).

    Returns:
        The non-empty pieces, in order; joined with spaces they give the text's words in order.
    """
    if max_characters is None:
        from mlms_keras.frontend.espeak.analysis import MAX_TEXT_CHARACTERS  # espeak imports this module

        max_characters = MAX_TEXT_CHARACTERS
    pieces = []
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) <= max_characters:
            pieces.append(sentence)
            continue
        current = ""
        for part in _CLAUSE_END.split(sentence):
            for word in part.split() if len(part) > max_characters else [part]:
                candidate = f"{current} {word}".strip()
                if len(candidate) > max_characters and current:
                    pieces.append(current)
                    candidate = word
                current = candidate
        if current:
            pieces.append(current)
    return pieces

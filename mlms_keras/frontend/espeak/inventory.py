"""espeak-ng's phoneme inventories and the phoneme symbols the frontend uses.

Phoneme symbols are espeak-ng mnemonics without stress marks (e.g. `oU`, `t#`, `e-`), the same names the phoneme
events report; they are what the `labels/` files of the teacher corpus contain. A language's inventory is read
from espeak-ng's compiled `phontab` (no library call), so it is available before libespeak-ng is initialised.
"""

from __future__ import annotations

import os
import struct
from functools import cache, lru_cache

import espeakng_loader

from mlms_keras.frontend.espeak.library import EspeakError
from mlms_keras.languages import OPEN_RULES, get_language

__all__ = ["TONE_KIND", "canonical_symbol", "parse_mnemonic", "pause_marks", "phoneme_inventory", "split_event_symbol"]

# espeak-ng phoneme types (phoneme.h) of real segments; 0 pause, 1 stress, 9 virtual are not phonemes here.
_SEGMENT_TYPES = {
    2: "vowel",
    3: "liquid",
    4: "stop",
    5: "voiced_stop",
    6: "fricative",
    7: "voiced_fricative",
    8: "nasal",
}
# Type 1 holds stress marks and, in tone languages, the tone numbers.
_STRESS_TYPE = 1
_PAUSE_TYPE = 0
#: `Phoneme.kind` of a tone phoneme (open frontend rules only).
TONE_KIND = "tone"
_STRESS_PREFIXES = {"'": 1, ",": 2}
_IGNORED_PREFIX_MARKS = "%="
_PAUSE_MNEMONICS = ("_::", "_:", "_!", "_|", "_;_", "_^_", "_", "||")


@cache
def phoneme_inventory(language: str) -> dict[str, str]:
    """The language's phoneme inventory from espeak-ng's compiled `phontab`: mnemonic -> kind.

    Only real segments are listed (kinds: vowel, liquid, stop, voiced_stop, fricative, voiced_fricative,
    nasal); pauses, stress marks and virtual phonemes are not. Table inheritance is resolved as espeak-ng
    does (a table overrides the phonemes of the table it includes). Languages under the open frontend rules
    (`mlms_keras.languages.OPEN_RULES`) also list their tone numbers (Mandarin `214`, Vietnamese `2`), kind
    `"tone"`, after the segments; the paper's eight languages have none.
    """
    spec = get_language(language)
    by_code = _resolved_table(spec.phoneme_table, language)
    inventory = {
        mnemonic: _SEGMENT_TYPES[phoneme_type]
        for code, (mnemonic, phoneme_type) in sorted(by_code.items())
        if phoneme_type in _SEGMENT_TYPES
    }
    if spec.frontend_rules == OPEN_RULES:  # tone numbers (type 1, like stress) are phonemes of kind "tone"
        for _, (mnemonic, phoneme_type) in sorted(by_code.items()):
            if phoneme_type == _STRESS_TYPE and mnemonic.isdigit() and mnemonic not in inventory:
                inventory[mnemonic] = TONE_KIND
    return inventory


@cache
def pause_marks(language: str) -> frozenset[str]:
    """Pause-type phonemes that espeak-ng writes without the `_` of its pauses (open frontend rules only).

    Dutch `!` (a break after a word) and the Persian `1` are espeak-ng pause phonemes (type 0) in their tables;
    under the open rules they are pauses, not phonemes. The paper's eight languages have none (their rules
    are frozen).
    """
    spec = get_language(language)
    if spec.frontend_rules != OPEN_RULES:
        return frozenset()
    by_code = _resolved_table(spec.phoneme_table, language)
    return frozenset(
        mnemonic
        for mnemonic, phoneme_type in by_code.values()
        if phoneme_type == _PAUSE_TYPE and mnemonic.isprintable() and not mnemonic.startswith("_") and mnemonic
    )


@cache
def _resolved_table(table_name: str, language: str) -> dict[int, tuple[str, int]]:
    """Phoneme code -> `(mnemonic, type)` of a table, its included tables resolved as espeak-ng does."""
    tables = _read_phontab()
    if table_name not in tables:
        raise EspeakError(f"espeak-ng phoneme table {table_name!r} (language {language!r}) is not in phontab")
    by_code: dict[int, tuple[str, int]] = {}
    chain = []
    name = table_name
    while name is not None:
        chain.append(name)
        name = tables[name][0]
    for name in reversed(chain):
        for mnemonic, code, phoneme_type in tables[name][1]:
            by_code[code] = (mnemonic, phoneme_type)
    return by_code


@lru_cache(maxsize=1)
def _read_phontab() -> dict[str, tuple[str | None, list[tuple[str, int, int]]]]:
    # Layout from espeak-ng's LoadPhonemeTable(): a count, then per table: n_phonemes, includes (index+1 of
    # the parent table), 2 pad bytes, a 32-byte name, and n_phonemes 16-byte PHONEME_TAB records.
    with open(os.path.join(espeakng_loader.get_data_path(), "phontab"), "rb") as file:
        data = file.read()
    table_count = data[0]
    offset = 4
    names: list[str] = []
    raw = []
    for _ in range(table_count):
        phoneme_count, includes = data[offset], data[offset + 1]
        offset += 4
        name = data[offset : offset + 32].split(b"\0")[0].decode("ascii")
        offset += 32
        phonemes = []
        for _ in range(phoneme_count):
            mnemonic, _flags, _program, code, phoneme_type = struct.unpack_from("<IIHBB", data, offset)
            offset += 16
            phonemes.append((mnemonic.to_bytes(4, "little").rstrip(b"\0").decode("latin-1"), code, phoneme_type))
        names.append(name)
        raw.append((includes, phonemes))
    return {
        name: (names[includes - 1] if includes > 0 else None, phonemes)
        for name, (includes, phonemes) in zip(names, raw)
    }


def parse_mnemonic(token: str) -> tuple[str, int] | None:
    """Split one phoneme token of espeak-ng's output into `(symbol, stress)`; `None` if it is only pauses.

    Leading pause mnemonics (`_:`, `_`, `||`, ...) are dropped; of the stress prefixes (`'` primary, `,`
    secondary) the first counts; the marks `%` and `=` are ignored.
    """
    while token:
        for pause in _PAUSE_MNEMONICS:
            if token.startswith(pause):
                token = token[len(pause) :]
                break
        else:
            break
    stress = 0
    while token and (token[0] in _STRESS_PREFIXES or token[0] in _IGNORED_PREFIX_MARKS):
        if token[0] in _STRESS_PREFIXES and stress == 0:
            stress = _STRESS_PREFIXES[token[0]]
        token = token[1:]
    if not token:
        return None
    return token, stress


def canonical_symbol(symbol: str, language: str) -> tuple[str, bool]:
    """A stress-free mnemonic -> `(inventory symbol, lengthened)`.

    espeak-ng writes its length mark `:` glued to the phoneme before it (`t:` in Italian "tutto"); when the
    glued form is not itself an inventory phoneme (unlike `i:`), the base phoneme is returned with
    `lengthened=True`. Raises `EspeakError` for a symbol outside the language's inventory.
    """
    inventory = phoneme_inventory(language)
    if symbol in inventory:
        return symbol, False
    open_rules = get_language(language).frontend_rules == OPEN_RULES
    if open_rules and symbol.endswith("::") and symbol[:-1] in inventory:
        return symbol[:-1], True  # Latvian "a::" is the long vowel "a:" lengthened, as its phoneme event says
    if symbol.endswith(":") and symbol.rstrip(":") in inventory:
        return symbol.rstrip(":"), True
    if open_rules and symbol.endswith("-") and symbol[:-1] in inventory:
        return symbol[:-1], False  # a syllable mark after a consonant (Russian-Latvian "f-"); events report "f"
    raise EspeakError(
        f"espeak-ng produced phoneme {symbol!r} that is not in the {language!r} inventory "
        f"(table {get_language(language).phoneme_table!r})"
    )


def split_event_symbol(symbol: str, language: str) -> str | None:
    """A phoneme event's mnemonic -> the frontend's phoneme symbol (as `Phoneme.symbol`), `None` for pauses.

    Tone phonemes (open rules) are never events: espeak-ng reports the vowel alone.
    """
    parsed = parse_mnemonic(symbol)
    if parsed is None or parsed[0] in pause_marks(language):
        return None
    return canonical_symbol(parsed[0], language)[0]

"""The universal linguistic feature layout of Li & Zen (2016), section 2: per-language sets and their union.

Each language has its own phoneme-level feature set (`language_feature_names`):

- phoneme identity in quinphone context: one-hot `{LL,L,C,R,RR}_phoneme=<symbol>` over the language's espeak-ng
  phoneme inventory plus `sil` (utterance start and end) and `pau` (pause inside the utterance);
- stress of the current, previous and next syllable, and whether espeak-ng lengthened the phoneme
  (`mlms_keras.frontend.linguistic.STRESS_FEATURE_NAMES`);
- syllable, word and phrase structure (`mlms_keras.frontend.linguistic.STRUCTURE_FEATURE_NAMES`, filled by
  `mlms_keras.frontend.linguistic.phoneme_rows`);
- panphon articulatory features (24 values in {-1, 0, +1}) for each of the five quinphone phonemes, so that a new
  language's unseen phonemes still get meaningful inputs. A phoneme that panphon reads as several segments (a
  diphthong `aɪ`, an affricate `tʃ`) gets their mean; `C_articulation_unknown` is 1 when panphon knows none of its
  segments.

The universal `FeatureLayout` is the ordered union of the sets of a declared language universe (section 2). A
language fills only its own dimensions; the others are zero ("zero padding"). `add_language` appends the new
language's missing dimensions at the end, so existing dimensions never move. The layout is saved with every
prepared corpus and model (`save` / `load`, `get_config` / `from_config`) as format `mlms-feature-layout`;
`require_compatible` refuses features built with another layout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import panphon

from mlms_keras.frontend import espeak
from mlms_keras.frontend.linguistic import (
    FRAME_FEATURE_NAMES,
    FRAME_PERIOD_MS,
    PAUSE,
    SILENCE,
    STRESS_FEATURE_NAMES,
    STRUCTURE_FEATURE_NAMES,
    PhonemeRow,
    rows_with_pauses,
)
from mlms_keras.languages import LANGUAGE_CODES
from mlms_keras.utils.fileio import atomic_write_text
from mlms_keras.utils.jsonfile import check_versioned, read_versioned_json

__all__ = [
    "LAYOUT_FORMAT",
    "LAYOUT_FORMAT_VERSION",
    "QUINPHONE_POSITIONS",
    "FeatureLayout",
    "LayoutMismatchError",
    "articulatory_feature_names",
    "articulatory_features",
    "common_feature_names",
    "default_layout",
    "identity_feature_names",
    "language_feature_names",
    "language_phoneme_symbols",
]

LAYOUT_FORMAT = "mlms-feature-layout"
LAYOUT_FORMAT_VERSION = 1
QUINPHONE_POSITIONS = ("LL", "L", "C", "R", "RR")

# How messages name the format, and what to do about a file that is not a valid layout.
_WHAT = "feature layout"
_REMEDY = (
    "write layouts with FeatureLayout.save (every prepared corpus and model keeps its own as feature_layout.json), "
    "or rebuild one with FeatureLayout.for_languages"
)


class LayoutMismatchError(ValueError):
    """Features were built with another `FeatureLayout` than the one expected."""


@lru_cache(maxsize=1)
def _panphon_table() -> panphon.FeatureTable:
    # Built once: reading panphon's feature tables takes a while.
    return panphon.FeatureTable()


def articulatory_feature_names() -> tuple[str, ...]:
    """panphon's 24 articulatory feature names, in panphon's order."""
    return tuple(_panphon_table().names)


# panphon lacks a few IPA symbols espeak-ng writes; these spell them with symbols it knows.
_PANPHON_SPELLINGS = {"ɚ": "əɹ", "ɝ": "ɜɹ", "ᵻ": "ɨ", "ɐ": "ɐ", "ʲ": "j"}


@lru_cache(maxsize=4096)
def articulatory_features(ipa: str) -> tuple[np.ndarray, bool]:
    """panphon features of one phoneme's IPA: `(24 values in [-1, 1], known)`.

    Several segments (diphthongs, affricates) are averaged; unknown or empty IPA gives zeros and `False`.
    """
    table = _panphon_table()
    vectors = table.word_to_vector_list(ipa, numeric=True) if ipa else []
    if not vectors and ipa:
        respelled = "".join(_PANPHON_SPELLINGS.get(character, character) for character in ipa)
        vectors = table.word_to_vector_list(respelled, numeric=True)
    if not vectors:
        return np.zeros(len(table.names), np.float32), False
    return np.mean(np.asarray(vectors, np.float32), axis=0), True


def language_phoneme_symbols(language: str) -> tuple[str, ...]:
    """The phoneme symbols of a language's identity features: `sil`, `pau`, then its espeak-ng inventory."""
    return (SILENCE, PAUSE) + tuple(espeak.phoneme_inventory(language))


def common_feature_names() -> tuple[str, ...]:
    """Features every language has: structure, stress and articulatory features (in this order)."""
    articulatory = tuple(
        f"{position}_articulation={name}" for position in QUINPHONE_POSITIONS for name in articulatory_feature_names()
    )
    return STRUCTURE_FEATURE_NAMES + STRESS_FEATURE_NAMES + articulatory + ("C_articulation_unknown",)


def identity_feature_names(symbols: Iterable[str]) -> tuple[str, ...]:
    """Quinphone identity feature names (`C_phoneme=oU`, ...) for the given phoneme symbols."""
    return tuple(f"{position}_phoneme={symbol}" for position in QUINPHONE_POSITIONS for symbol in symbols)


def language_feature_names(language: str) -> tuple[str, ...]:
    """A language's own phoneme-level feature set (section 2): common features + its quinphone identities."""
    return common_feature_names() + identity_feature_names(language_phoneme_symbols(language))


class FeatureLayout:
    """The universal phoneme-level feature layout: the ordered union of the languages' feature sets.

    Args:
        language_symbols: mapping language code -> its identity phoneme symbols (order of addition kept).
        feature_names: the ordered feature names (dimension i is `feature_names[i]`).

    Build one with `FeatureLayout.for_languages(codes)` (the default universe is the paper's eight
    languages); load one with `load`, `from_json` or `from_config`.

    Example:
        >>> layout = FeatureLayout.for_languages(["en-us", "fr"])
        >>> features = layout.phoneme_features("Hello there.", "en-us")   # (phonemes, layout.dimension)
        >>> wider = layout.add_language("de")                             # old dimensions unchanged
        >>> wider.feature_names[: layout.dimension] == layout.feature_names
        True
    """

    def __init__(self, language_symbols: dict[str, Sequence[str]], feature_names: Sequence[str]):
        self.language_symbols = {code: tuple(symbols) for code, symbols in language_symbols.items()}
        self.feature_names = tuple(feature_names)
        self._index = {name: index for index, name in enumerate(self.feature_names)}
        if len(self._index) != len(self.feature_names):
            raise ValueError("FeatureLayout feature_names contain duplicates")
        common = common_feature_names()
        missing_common = [name for name in common if name not in self._index]
        if missing_common:
            raise ValueError(f"FeatureLayout lacks common features, e.g. {missing_common[:3]}")
        self._masks = {}
        for code, symbols in self.language_symbols.items():
            names = common + identity_feature_names(symbols)
            missing = [name for name in names if name not in self._index]
            if missing:
                raise ValueError(f"FeatureLayout lacks features of language {code!r}, e.g. {missing[:3]}")
            mask = np.zeros(len(self.feature_names), bool)
            mask[[self._index[name] for name in names]] = True
            self._masks[code] = mask

    # Construction ---------------------------------------------------------------------------------------
    @classmethod
    def for_languages(cls, languages: Iterable[str] = LANGUAGE_CODES) -> FeatureLayout:
        """The union of the given languages' feature sets, in the given order."""
        layout = cls({}, common_feature_names())
        for code in languages:
            layout = layout.add_language(code)
        return layout

    def add_language(self, language: str) -> FeatureLayout:
        """A new layout that also covers `language`; its missing features are appended at the end.

        Existing dimensions keep their index and meaning, so a model trained with this layout can be
        extended with new input rows for the new dimensions (adaptation to a new language).
        """
        if language in self.language_symbols:
            return self
        symbols = language_phoneme_symbols(language)
        new_names = [name for name in identity_feature_names(symbols) if name not in self._index]
        return FeatureLayout({**self.language_symbols, language: symbols}, self.feature_names + tuple(new_names))

    # Properties --------------------------------------------------------------------------------------------
    @property
    def languages(self) -> tuple[str, ...]:
        """The layout's language codes, in the order they were added."""
        return tuple(self.language_symbols)

    @property
    def dimension(self) -> int:
        """`D_phone`: size of a phoneme-level vector."""
        return len(self.feature_names)

    @property
    def frame_dimension(self) -> int:
        """`D_phone + 4`: size of a frame-level vector (3 coarse-coded positions + 1 duration)."""
        return len(self.feature_names) + len(FRAME_FEATURE_NAMES)

    @property
    def frame_feature_names(self) -> tuple[str, ...]:
        """The feature names of a frame-level vector: `feature_names` and the 4 frame features."""
        return self.feature_names + FRAME_FEATURE_NAMES

    def index(self, feature_name: str) -> int:
        """The dimension of a feature name (`KeyError` if the layout has no such feature)."""
        return self._index[feature_name]

    def language_mask(self, language: str) -> np.ndarray:
        """Boolean mask `(dimension,)` of the features this language uses; the rest is zero padding."""
        self._require_language(language)
        return self._masks[language].copy()

    @property
    def fingerprint(self) -> str:
        """sha256 (hex, first 16 characters) of the layout's content: equal if and only if the layouts are equal."""
        payload = json.dumps(
            {"feature_names": self.feature_names, "language_symbols": self.language_symbols}, sort_keys=True
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    # Serialisation -----------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-serialisable description; `from_config(get_config())` rebuilds an equal layout."""
        return {
            "format": LAYOUT_FORMAT,
            "format_version": LAYOUT_FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "languages": list(self.language_symbols),
            "language_symbols": {code: list(symbols) for code, symbols in self.language_symbols.items()},
            "feature_names": list(self.feature_names),
            "frame_feature_names": list(FRAME_FEATURE_NAMES),
            "frame_period_ms": FRAME_PERIOD_MS,
            "espeak_ng_version": espeak.espeak_version(),
        }

    @classmethod
    def from_config(cls, config: dict) -> FeatureLayout:
        """Rebuild from `get_config()`; checks format, version and fingerprint (no espeak-ng call)."""
        check_versioned(config, LAYOUT_FORMAT, LAYOUT_FORMAT_VERSION, _WHAT, _REMEDY)
        layout = cls(config["language_symbols"], config["feature_names"])
        if "fingerprint" in config and config["fingerprint"] != layout.fingerprint:
            raise ValueError(
                f"{_WHAT} fingerprint {config['fingerprint']} does not match its content ({layout.fingerprint}): "
                f"the layout was edited or corrupted; {_REMEDY}"
            )
        return layout

    def to_json(self) -> str:
        """The layout as JSON text (`get_config()`)."""
        return json.dumps(self.get_config(), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> FeatureLayout:
        """Rebuild from `to_json()` text."""
        return cls.from_config(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write the layout as JSON, atomically (a temporary file, then `os.replace`), e.g. `feature_layout.json`."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> FeatureLayout:
        """Read a layout written by `save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not JSON, not a layout, another format version, or an edited layout; the message names
                the file.
        """
        config = read_versioned_json(path, LAYOUT_FORMAT, LAYOUT_FORMAT_VERSION, _WHAT, _REMEDY)
        try:
            return cls.from_config(config)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a valid {_WHAT} (missing or malformed field {error}); {_REMEDY}") from error

    def __eq__(self, other):
        return isinstance(other, FeatureLayout) and self.fingerprint == other.fingerprint

    def __hash__(self):
        return hash(self.fingerprint)

    def __repr__(self):
        return (
            f"FeatureLayout(languages={list(self.languages)}, dimension={self.dimension}, "
            f"fingerprint={self.fingerprint})"
        )

    def require_compatible(self, other: FeatureLayout | dict | str, what: str = "inputs") -> None:
        """Raise `LayoutMismatchError` unless `other` (a layout, its config, or a fingerprint) equals self."""
        if isinstance(other, FeatureLayout):
            other_fingerprint, other_layout = other.fingerprint, other
        elif isinstance(other, dict):
            other_fingerprint, other_layout = other.get("fingerprint"), None
        else:
            other_fingerprint, other_layout = str(other), None
        if other_fingerprint == self.fingerprint:
            return
        detail = ""
        if other_layout is not None:
            first_difference = next(
                (
                    index
                    for index, (mine, theirs) in enumerate(zip(self.feature_names, other_layout.feature_names))
                    if mine != theirs
                ),
                min(self.dimension, other_layout.dimension),
            )
            detail = (
                f" Expected {self.dimension} dims over languages {list(self.languages)}, got {other_layout.dimension} "
                f"dims over {list(other_layout.languages)}; first difference at dimension {first_difference}."
            )
        raise LayoutMismatchError(
            f"The {what} were built with feature layout {other_fingerprint}, but this expects {self.fingerprint}."
            f"{detail} Rebuild the {what} with this layout (it is saved as feature_layout.json beside the model "
            "or prepared corpus), or extend the model with add_language."
        )

    # Features ---------------------------------------------------------------------------------------------
    def _require_language(self, language: str) -> None:
        if language not in self.language_symbols:
            raise ValueError(
                f"Language {language!r} is not in this feature layout (languages: {list(self.languages)}). "
                "Use layout.add_language(...) to extend it."
            )

    def rows_to_matrix(self, rows: list[PhonemeRow], language: str) -> np.ndarray:
        """Phoneme rows (in order, `sil`/`pau` included) -> `(phonemes, dimension)` float32 features."""
        self._require_language(language)
        allowed_symbols = set(self.language_symbols[language])
        matrix = np.zeros((len(rows), self.dimension), np.float32)
        art_names = articulatory_feature_names()
        art_index = {
            position: np.array([self._index[f"{position}_articulation={name}"] for name in art_names])
            for position in QUINPHONE_POSITIONS
        }
        unknown_index = self._index["C_articulation_unknown"]
        padded = [SILENCE, SILENCE] + [row.symbol for row in rows] + [SILENCE, SILENCE]
        padded_ipa = ["", ""] + [row.ipa for row in rows] + ["", ""]
        for row_number, row in enumerate(rows):
            for name, value in row.values.items():
                matrix[row_number, self._index[name]] = value
            for offset, position in enumerate(QUINPHONE_POSITIONS):
                symbol = padded[row_number + offset]
                if symbol not in allowed_symbols:
                    raise ValueError(
                        f"Phoneme {symbol!r} is not in the {language!r} inventory of this layout; "
                        "rebuild the layout with the current espeak-ng data."
                    )
                matrix[row_number, self._index[f"{position}_phoneme={symbol}"]] = 1.0
                if symbol not in (SILENCE, PAUSE):
                    vector, known = articulatory_features(padded_ipa[row_number + offset])
                    matrix[row_number, art_index[position]] = vector
                    if position == "C" and not known:
                        matrix[row_number, unknown_index] = 1.0
        matrix[:, ~self._masks[language]] = 0.0  # zero padding (section 2)
        return matrix

    def phoneme_features(self, text: str, language: str) -> np.ndarray:
        """Text -> phoneme-level features `(phonemes + sil/pau rows, dimension)`, for synthesis from text."""
        return self.rows_to_matrix(rows_with_pauses(espeak.analyze(text, language)), language)


def default_layout() -> FeatureLayout:
    """The layout over the package's universe (the paper's 8 languages, training then adaptation).

    Equals `FeatureLayout.for_languages(mlms_keras.languages.LANGUAGE_CODES)`.
    """
    return FeatureLayout.for_languages(LANGUAGE_CODES)

"""Linguistic features of Li & Zen (2016), sections 2 and 3: per-language sets, their union, frame expansion.

Phoneme level. Each language has its own feature set (`language_feature_names`):

* phoneme identity in quinphone context: one-hot `{LL,L,C,R,RR}_phoneme=<symbol>` over the language's
  espeak-ng phoneme inventory plus "sil" (utterance start/end) and "pau" (pause inside the utterance);
* stress of the current, previous and next syllable, and whether espeak-ng lengthened the phoneme;
* syllable, word and phrase structure (HTS style, positions counted from 1, forward and backward):
  phonemes in the syllable and the phoneme's position in it, syllables in the word and the syllable's
  position in the word and in the phrase, words in the phrase and the word's position, phrases in the
  utterance and the phrase's position, stressed syllables before/after in the phrase, sizes of the
  neighbouring word and phrase, and the kind of phrase ending (statement, question, continuation,
  exclamation, none);
* panphon articulatory features (24 values in {-1, 0, +1}) for each of the five quinphone phonemes, so that
  a new language's unseen phonemes still get meaningful inputs. A phoneme that panphon reads as several
  segments (a diphthong "aɪ", an affricate "tʃ") gets their mean; "C_articulation_unknown" is 1 when panphon
  knows none of its segments.

The universal `FeatureLayout` is the ordered union of the sets of a declared language universe (section 2).
A language fills only its own dimensions; the others are zero ("zero padding"). `add_language` appends the
new language's missing dimensions at the end, so existing dimensions never move. The layout is saved with
every prepared corpus and model (`to_json` / `from_json`); `require_compatible` refuses another layout.

Frame level (section 3): each phoneme's row is repeated for its frames (5 ms each) and extended with 3
coarse-coded positions of the frame within the phoneme and 1 duration feature (the phoneme's duration in
frames). Coarse coding follows Merlin (Wu et al. 2016; Zen & Sak 2015's "coarse-coded position"): three
Gaussians with means 0, 0.5 and 1 and standard deviation 0.4, evaluated at the frame's relative position
r = (i + 0.5) / d for frame i of a d-frame phoneme (Merlin samples r = i / d; we use frame centres so the
coding is symmetric in time).

Silences and pauses: text analysis gives "sil" at both ends and "pau" between phrases. When durations come
from an alignment (`features_for_alignment`), the alignment decides: each run of silence segments becomes one
"sil" (at the ends) or "pau" (inside) row, and a frontend phrase break without a silence segment gets none.
Structure features of sil/pau rows are zero; their quinphone context and identity are filled.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mlms_keras.frontend import espeak
from mlms_keras.languages import LANGUAGE_CODES

FRAME_PERIOD_MS = 5.0
SILENCE = "sil"
PAUSE = "pau"
QUINPHONE_POSITIONS = ("LL", "L", "C", "R", "RR")
COARSE_CODING_MEANS = (0.0, 0.5, 1.0)
COARSE_CODING_STD = 0.4
FRAME_FEATURE_NAMES = (
    "frame_position_coarse_0",
    "frame_position_coarse_1",
    "frame_position_coarse_2",
    "phoneme_duration_frames",
)
LAYOUT_FORMAT = "mlms-feature-layout"
LAYOUT_FORMAT_VERSION = 1

# Labels that mean "no phoneme here" in our labels and in common aligners (HTS/Merlin, MFA, Kaldi).
SILENCE_LABELS = frozenset({"sil", "pau", "sp", "spn", "sil0", "h#", "#", "_", "", "<sil>", "silence", "<eps>"})

PHRASE_ENDINGS = ("statement", "question", "continuation", "exclamation", "none")

STRUCTURE_FEATURE_NAMES = (
    "phoneme_position_in_syllable_forward",
    "phoneme_position_in_syllable_backward",
    "phonemes_in_syllable",
    "syllable_position_in_word_forward",
    "syllable_position_in_word_backward",
    "syllables_in_word",
    "syllable_position_in_phrase_forward",
    "syllable_position_in_phrase_backward",
    "syllables_in_phrase",
    "stressed_syllables_before_in_phrase",
    "stressed_syllables_after_in_phrase",
    "word_position_in_phrase_forward",
    "word_position_in_phrase_backward",
    "words_in_phrase",
    "syllables_in_previous_word",
    "syllables_in_next_word",
    "phrase_position_in_utterance_forward",
    "phrase_position_in_utterance_backward",
    "phrases_in_utterance",
    "words_in_previous_phrase",
    "words_in_next_phrase",
    "syllables_in_utterance",
    "words_in_utterance",
) + tuple(f"phrase_ending={ending}" for ending in PHRASE_ENDINGS)

# Stress and quantity (espeak-ng's length mark, e.g. Italian geminates).
STRESS_FEATURE_NAMES = (
    "syllable_stress=primary",
    "syllable_stress=secondary",
    "previous_syllable_stressed",
    "next_syllable_stressed",
    "phoneme_lengthened",
)


class LayoutMismatchError(ValueError):
    """Features were built with another `FeatureLayout` than the one expected."""


class AlignmentMismatchError(ValueError):
    """An alignment's phones do not match the frontend's phonemes for the same text."""


@lru_cache(maxsize=1)
def _panphon_table():
    import panphon

    return panphon.FeatureTable()


def articulatory_feature_names() -> tuple[str, ...]:
    """panphon's 24 articulatory feature names, in panphon's order."""
    return tuple(_panphon_table().names)


# panphon lacks a few IPA symbols espeak-ng writes; these spell them with symbols it knows.
_PANPHON_SPELLINGS = {"ɚ": "əɹ", "ɝ": "ɜɹ", "ᵻ": "ɨ", "ɐ": "ɐ", "ʲ": "j"}


@lru_cache(maxsize=4096)
def articulatory_features(ipa: str) -> tuple[np.ndarray, bool]:
    """panphon features of one phoneme's IPA: (24 values in [-1, 1], known?).

    Several segments (diphthongs, affricates) are averaged; unknown or empty IPA gives zeros and False.
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
    """The phoneme symbols of a language's identity features: "sil", "pau", then its espeak-ng inventory."""
    return (SILENCE, PAUSE) + tuple(espeak.phoneme_inventory(language))


def common_feature_names() -> tuple[str, ...]:
    """Features every language has: structure, stress and articulatory features (in this order)."""
    articulatory = tuple(
        f"{position}_articulation={name}" for position in QUINPHONE_POSITIONS for name in articulatory_feature_names()
    )
    return STRUCTURE_FEATURE_NAMES + STRESS_FEATURE_NAMES + articulatory + ("C_articulation_unknown",)


def identity_feature_names(symbols) -> tuple[str, ...]:
    """Quinphone identity feature names for the given phoneme symbols."""
    return tuple(f"{position}_phoneme={symbol}" for position in QUINPHONE_POSITIONS for symbol in symbols)


def language_feature_names(language: str) -> tuple[str, ...]:
    """A language's own phoneme-level feature set (section 2): common features + its quinphone identities."""
    return common_feature_names() + identity_feature_names(language_phoneme_symbols(language))


@dataclass
class PhonemeRow:
    """One row of the phoneme-level sequence before it becomes a vector.

    Attributes:
        symbol: espeak-ng mnemonic, or "sil" / "pau".
        ipa: the phoneme's IPA ("" for sil/pau).
        values: named structure and stress feature values (empty for sil/pau).
    """

    symbol: str
    ipa: str
    values: dict

    @property
    def is_silence(self) -> bool:
        return self.symbol in (SILENCE, PAUSE)


def _phrase_ending(terminator: str) -> str:
    if "?" in terminator:
        return "question"
    if "!" in terminator:
        return "exclamation"
    if any(character in terminator for character in ",;:"):
        return "continuation"
    if any(character in terminator for character in ".…"):
        return "statement"
    return "none"


def phoneme_rows(utterance: espeak.Utterance) -> list[PhonemeRow]:
    """The utterance's phonemes (no sil/pau) with their structure and stress feature values."""
    rows = []
    phrases = utterance.phrases
    syllables_in_utterance = sum(len(word.syllables) for word in utterance.words)
    words_in_utterance = len(utterance.words)
    for phrase_index, phrase in enumerate(phrases):
        phrase_syllables = [syllable for word in phrase.words for syllable in word.syllables]
        stressed_flags = [syllable.stress > 0 for syllable in phrase_syllables]
        ending = _phrase_ending(phrase.terminator)
        syllable_in_phrase = 0
        for word_index, word in enumerate(phrase.words):
            for syllable_index, syllable in enumerate(word.syllables):
                previous_stress = phrase_syllables[syllable_in_phrase - 1].stress if syllable_in_phrase > 0 else 0
                next_stress = (
                    phrase_syllables[syllable_in_phrase + 1].stress
                    if syllable_in_phrase + 1 < len(phrase_syllables)
                    else 0
                )
                for phoneme_index, phoneme in enumerate(syllable.phonemes):
                    values = {
                        "phoneme_position_in_syllable_forward": phoneme_index + 1,
                        "phoneme_position_in_syllable_backward": len(syllable.phonemes) - phoneme_index,
                        "phonemes_in_syllable": len(syllable.phonemes),
                        "syllable_position_in_word_forward": syllable_index + 1,
                        "syllable_position_in_word_backward": len(word.syllables) - syllable_index,
                        "syllables_in_word": len(word.syllables),
                        "syllable_position_in_phrase_forward": syllable_in_phrase + 1,
                        "syllable_position_in_phrase_backward": len(phrase_syllables) - syllable_in_phrase,
                        "syllables_in_phrase": len(phrase_syllables),
                        "stressed_syllables_before_in_phrase": sum(stressed_flags[:syllable_in_phrase]),
                        "stressed_syllables_after_in_phrase": sum(stressed_flags[syllable_in_phrase + 1 :]),
                        "word_position_in_phrase_forward": word_index + 1,
                        "word_position_in_phrase_backward": len(phrase.words) - word_index,
                        "words_in_phrase": len(phrase.words),
                        "syllables_in_previous_word": (
                            len(phrase.words[word_index - 1].syllables) if word_index > 0 else 0
                        ),
                        "syllables_in_next_word": (
                            len(phrase.words[word_index + 1].syllables) if word_index + 1 < len(phrase.words) else 0
                        ),
                        "phrase_position_in_utterance_forward": phrase_index + 1,
                        "phrase_position_in_utterance_backward": len(phrases) - phrase_index,
                        "phrases_in_utterance": len(phrases),
                        "words_in_previous_phrase": len(phrases[phrase_index - 1].words) if phrase_index > 0 else 0,
                        "words_in_next_phrase": (
                            len(phrases[phrase_index + 1].words) if phrase_index + 1 < len(phrases) else 0
                        ),
                        "syllables_in_utterance": syllables_in_utterance,
                        "words_in_utterance": words_in_utterance,
                        f"phrase_ending={ending}": 1,
                        "syllable_stress=primary": int(syllable.stress == 1),
                        "syllable_stress=secondary": int(syllable.stress == 2),
                        "previous_syllable_stressed": int(previous_stress > 0),
                        "next_syllable_stressed": int(next_stress > 0),
                        "phoneme_lengthened": int(phoneme.lengthened),
                    }
                    rows.append(PhonemeRow(phoneme.symbol, phoneme.ipa, values))
                syllable_in_phrase += 1
    return rows


def rows_with_pauses(utterance: espeak.Utterance) -> list[PhonemeRow]:
    """Rows for synthesis from text: "sil", the phonemes with "pau" between phrases, "sil"."""
    rows = phoneme_rows(utterance)
    phrase_lengths = [sum(len(word.phonemes) for word in phrase.words) for phrase in utterance.phrases]
    result = [PhonemeRow(SILENCE, "", {})]
    start = 0
    for index, length in enumerate(phrase_lengths):
        if index > 0:
            result.append(PhonemeRow(PAUSE, "", {}))
        result.extend(rows[start : start + length])
        start += length
    result.append(PhonemeRow(SILENCE, "", {}))
    return result


class FeatureLayout:
    """The universal phoneme-level feature layout: the ordered union of the languages' feature sets.

    Args:
        language_symbols: mapping language code -> its identity phoneme symbols (order of addition kept).
        feature_names: the ordered feature names (dimension i is `feature_names[i]`).

    Build one with `FeatureLayout.for_languages(codes)` (the default universe is the paper's eight
    languages); load one with `from_json` / `from_config`.

    Example:
        >>> layout = FeatureLayout.for_languages(["en-us", "fr"])
        >>> features = layout.phoneme_features("Hello there.", "en-us")   # (phonemes, layout.dimension)
        >>> wider = layout.add_language("de")                             # old dimensions unchanged
        >>> wider.feature_names[: layout.dimension] == layout.feature_names
        True
    """

    def __init__(self, language_symbols: dict, feature_names):
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
    def for_languages(cls, languages=LANGUAGE_CODES) -> FeatureLayout:
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
        return tuple(self.language_symbols)

    @property
    def dimension(self) -> int:
        """D_phone: size of a phoneme-level vector."""
        return len(self.feature_names)

    @property
    def frame_dimension(self) -> int:
        """D_phone + 4: size of a frame-level vector (3 coarse-coded positions + 1 duration)."""
        return len(self.feature_names) + len(FRAME_FEATURE_NAMES)

    @property
    def frame_feature_names(self) -> tuple[str, ...]:
        return self.feature_names + FRAME_FEATURE_NAMES

    def index(self, feature_name: str) -> int:
        """The dimension of a feature name (KeyError if the layout has no such feature)."""
        return self._index[feature_name]

    def language_mask(self, language: str) -> np.ndarray:
        """Boolean mask (dimension,) of the features this language uses; the rest is zero padding."""
        self._require_language(language)
        return self._masks[language].copy()

    @property
    def fingerprint(self) -> str:
        """sha256 (hex, first 16 characters) of the layout's content: equal iff the layouts are equal."""
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
        """Rebuild from `get_config()`; checks format and fingerprint (no espeak-ng call)."""
        if not isinstance(config, dict) or config.get("format") != LAYOUT_FORMAT:
            raise ValueError(f"Not a feature layout (expected format {LAYOUT_FORMAT!r}); was it saved by to_json?")
        if config.get("format_version") != LAYOUT_FORMAT_VERSION:
            raise ValueError(
                f"Feature layout format_version {config.get('format_version')} is not supported "
                f"(this package reads {LAYOUT_FORMAT_VERSION}); upgrade mlms-keras."
            )
        layout = cls(config["language_symbols"], config["feature_names"])
        if "fingerprint" in config and config["fingerprint"] != layout.fingerprint:
            raise ValueError(
                f"Feature layout fingerprint {config['fingerprint']} does not match its content "
                f"({layout.fingerprint}): the file was edited or corrupted."
            )
        return layout

    def to_json(self) -> str:
        return json.dumps(self.get_config(), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> FeatureLayout:
        return cls.from_config(json.loads(text))

    def save(self, path) -> None:
        """Write the layout as JSON (atomically: temporary file + os.replace), e.g. feature_layout.json."""
        from mlms_keras.utils.fileio import atomic_write_text

        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path) -> FeatureLayout:
        """Read a layout written by `save`; errors name the file."""
        try:
            with open(path, encoding="utf-8") as file:
                return cls.from_json(file.read())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no feature layout file; it is written beside every prepared corpus and model "
                "(feature_layout.json). Pass the right folder, or rebuild the layout with FeatureLayout.for_languages."
            ) from None
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a valid feature layout ({error})") from error

    def __eq__(self, other):
        return isinstance(other, FeatureLayout) and self.fingerprint == other.fingerprint

    def __hash__(self):
        return hash(self.fingerprint)

    def __repr__(self):
        return f"FeatureLayout(languages={list(self.languages)}, dimension={self.dimension}, fingerprint={self.fingerprint})"

    def require_compatible(self, other, what: str = "inputs") -> None:
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
    def _require_language(self, language: str):
        if language not in self.language_symbols:
            raise ValueError(
                f"Language {language!r} is not in this feature layout (languages: {list(self.languages)}). "
                "Use layout.add_language(...) to extend it."
            )

    def rows_to_matrix(self, rows: list[PhonemeRow], language: str) -> np.ndarray:
        """Phoneme rows (in order, sil/pau included) -> (phonemes, dimension) float32 features."""
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
        """Text -> phoneme-level features (phonemes + sil/pau rows, dimension), for synthesis from text."""
        return self.rows_to_matrix(rows_with_pauses(espeak.analyze(text, language)), language)


@dataclass
class AlignedFeatures:
    """Phoneme-level features of an aligned utterance.

    Attributes:
        phoneme_features: (phonemes, D_phone) float32, sil/pau rows included as the alignment has them.
        durations_frames: (phonemes,) int32, frames of 5 ms per row; sums to the alignment's frame count.
        symbols: the row symbols (espeak-ng mnemonics, "sil", "pau").
        start_frame: frame index of the first row's start (0 when the alignment starts at time 0).
    """

    phoneme_features: np.ndarray
    durations_frames: np.ndarray
    symbols: list
    start_frame: int = 0


_FULL_CONTEXT = re.compile(r"^[^\^]*\^[^-]*-(.+?)\+")


def normalise_label(label: str) -> str:
    """An alignment label -> a phoneme symbol: strips stress marks, takes the centre of HTS full-context labels."""
    label = label.strip()
    match = _FULL_CONTEXT.match(label)
    if match:
        label = match.group(1)
    return label.lstrip("'ˈˌ,%=")


def is_silence_label(label: str) -> bool:
    """True for silence/pause labels of our corpora and common aligners (sil, pau, sp, spn, empty, ...)."""
    symbol = normalise_label(label)
    return symbol.lower() in SILENCE_LABELS or symbol.startswith("_")


def features_for_alignment(
    text: str,
    language: str,
    segments,
    layout: FeatureLayout,
    utterance_id: str = "<utterance>",
    frame_period_ms: float = FRAME_PERIOD_MS,
    match: str = "exact",
) -> AlignedFeatures:
    """Phoneme-level features and durations (in frames) for a corpus utterance with a phone alignment.

    Args:
        text: the utterance text.
        language: its language code.
        segments: phone segments in time order (`mlms_keras.frontend.labels.Segment`, e.g. from
            `read_hts_labels`), silences included.
        layout: the feature layout to build with.
        utterance_id: named in errors.
        frame_period_ms: frame shift (5 ms).
        match: "exact": every non-silence label must equal the frontend's phoneme (espeak-ng mnemonic, as
            in the teacher corpus); "count": only the number of phones must agree (alignments from other
            tools with other phone sets, used in order).

    Returns:
        `AlignedFeatures`. Silence segments (`is_silence_label`) become sil/pau rows (consecutive ones
        merged); a frontend phrase break without a silence segment gets no pause row. A phoneme shorter than
        half a frame may get 0 frames: it keeps its row so the context stays right.

    Raises:
        AlignmentMismatchError: the label phones and the frontend's phonemes differ; the message names the
            utterance, the first differing position and both phone sequences around it.
    """
    from mlms_keras.frontend.labels import segments_to_frames

    if match not in ("exact", "count"):
        raise ValueError(f"match must be 'exact' or 'count', got {match!r}")
    try:
        utterance = espeak.analyze(text, language)
    except espeak.FrontendInputError as error:
        raise espeak.FrontendInputError(f"{utterance_id}: {error}") from error
    frontend_rows = phoneme_rows(utterance)
    frames = segments_to_frames(list(segments), frame_period_ms)
    if not frames:
        raise AlignmentMismatchError(f"{utterance_id}: the alignment has no segments")
    labelled = [(start, end, normalise_label(label), is_silence_label(label)) for start, end, label in frames]
    label_phones = [symbol for _, _, symbol, silent in labelled if not silent]
    frontend_phones = [row.symbol for row in frontend_rows]
    differing = (
        (i for i, (a, b) in enumerate(zip(label_phones, frontend_phones)) if a != b) if match == "exact" else iter(())
    )
    mismatch = next(differing, None)
    if mismatch is None and len(label_phones) != len(frontend_phones):
        mismatch = min(len(label_phones), len(frontend_phones))
    if mismatch is not None:
        window = slice(max(0, mismatch - 3), mismatch + 4)
        raise AlignmentMismatchError(
            f"{utterance_id}: the alignment has {len(label_phones)} phones but the frontend ({language}) gives "
            f"{len(frontend_phones)} for {text[:60]!r}; first difference at phone {mismatch}: labels "
            f"{label_phones[window]} vs frontend {frontend_phones[window]}. Re-align the utterance with the "
            "frontend's phonemes, fix its text, or use match='count' for another phone set; or skip it."
        )
    rows, durations = [], []
    phone_number = 0
    last_index = len(labelled) - 1
    for index, (start, end, symbol, silent) in enumerate(labelled):
        if silent:
            kind = SILENCE if index == 0 or index == last_index else PAUSE
            if rows and rows[-1].is_silence:
                durations[-1] += end - start
                if kind == SILENCE:
                    rows[-1] = PhonemeRow(SILENCE, "", {})
            elif end > start:
                rows.append(PhonemeRow(kind, "", {}))
                durations.append(end - start)
        else:
            rows.append(frontend_rows[phone_number])
            durations.append(end - start)
            phone_number += 1
    return AlignedFeatures(
        layout.rows_to_matrix(rows, language),
        np.asarray(durations, np.int32),
        [row.symbol for row in rows],
        start_frame=labelled[0][0],
    )


def features_for_label_file(
    text: str,
    language: str,
    alignment_path,
    layout: FeatureLayout,
    utterance_id: str | None = None,
    match: str = "exact",
    tier: str | None = None,
) -> AlignedFeatures:
    """`features_for_alignment` for an alignment file: HTS `.lab` or Praat `.TextGrid` (phone tier `tier`).

    Errors name the utterance (default: the file name without suffix).
    """
    from pathlib import Path

    from mlms_keras.frontend.labels import read_alignment

    utterance_id = utterance_id or Path(alignment_path).stem
    segments = read_alignment(alignment_path, tier=tier)
    return features_for_alignment(text, language, segments, layout, utterance_id, match=match)


def coarse_coded_positions(duration_frames: int) -> np.ndarray:
    """The 3 coarse-coded positions of each frame in a phoneme of `duration_frames` frames: (frames, 3).

    Value k of frame i is the Gaussian density N(r; mean_k, 0.4^2) at r = (i + 0.5) / duration_frames,
    with means 0, 0.5, 1 (Merlin's coarse coding; see the module docstring).
    """
    relative = (np.arange(duration_frames, dtype=np.float64) + 0.5) / max(duration_frames, 1)
    means = np.asarray(COARSE_CODING_MEANS)
    density = np.exp(-0.5 * ((relative[:, None] - means[None, :]) / COARSE_CODING_STD) ** 2)
    return (density / (COARSE_CODING_STD * math.sqrt(2 * math.pi))).astype(np.float32)


def expand_to_frames(phoneme_features: np.ndarray, durations_frames) -> np.ndarray:
    """Frame-level features (section 3): (phonemes, D) and durations -> (frames, D + 4).

    Each phoneme's row is repeated for its frames and followed by the frame's 3 coarse-coded positions in
    the phoneme and the phoneme's duration in frames. Phonemes with 0 frames contribute no frames.

    Raises:
        ValueError: shapes disagree, or a duration is negative or not a whole number.
    """
    phoneme_features = np.asarray(phoneme_features, np.float32)
    durations = np.asarray(durations_frames)
    if phoneme_features.ndim != 2:
        raise ValueError(f"phoneme_features must be (phonemes, features), got shape {phoneme_features.shape}")
    if durations.shape != (phoneme_features.shape[0],):
        raise ValueError(
            f"durations_frames must have one entry per phoneme ({phoneme_features.shape[0]}), got shape {durations.shape}"
        )
    if durations.size and (np.any(durations < 0) or np.any(durations != np.round(durations))):
        raise ValueError("durations_frames must be non-negative whole numbers of frames")
    durations = durations.astype(np.int64)
    total = int(durations.sum())
    frames = np.empty((total, phoneme_features.shape[1] + 4), np.float32)
    frames[:, : phoneme_features.shape[1]] = np.repeat(phoneme_features, durations, axis=0)
    position = 0
    for duration in durations:
        if duration:
            frames[position : position + duration, -4:-1] = coarse_coded_positions(int(duration))
            frames[position : position + duration, -1] = duration
            position += duration
    return frames


def default_layout() -> FeatureLayout:
    """The layout over the package's universe (the paper's 8 languages, training then adaptation)."""
    return FeatureLayout.for_languages(LANGUAGE_CODES)

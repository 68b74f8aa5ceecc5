"""Emission scores and Viterbi forced alignment over a phone sequence with optional silences.

**Emissions** (`emission_scores`). From the model's per-frame posteriors `q_t` (P(feature +)) and `s_t`
(P(silence)), a phone `p` with targets `y_p` and mask `m_p` (`mlms_keras.align.phones`) scores at frame `t`

    log(1 - s_t) + w * sum_f m_pf [y_pf log q_tf + (1 - y_pf) log(1 - q_tf)] / sum_f m_pf

(the mean over the features the phone specifies, so phones with many specified features are not penalised), and
silence scores `log s_t + w * silence_offset`. `free_scores` is the best score any of the utterance's phones (or
silence) gets at each frame, ignoring their order: the alignment score of an utterance is the mean, over frames, of
its path's emission minus this bound (0 is a perfect fit; a transcript that does not match makes it clearly
negative).

**Graph** (`forced_align`): `[sil] p1 [pau] p2 ... pN [sil]`: leading and trailing silence are optional, and a pause
is allowed before every word start; a pause costs `pause_penalty` and lasts at least `min_pause_frames`. Each phone
takes at least `min_phone_frames` 5 ms frames. The search is vectorised over states (one numpy step per frame).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlms_keras.align.phones import AlignmentPhones

__all__ = ["EmissionSettings", "PathUnits", "emission_scores", "forced_align", "free_scores"]

_EPS = 1e-6
SILENCE_COLUMN = -1


@dataclasses.dataclass(frozen=True)
class EmissionSettings:
    """How posteriors become scores and how pauses are allowed.

    Attributes:
        feature_weight: `w` above: weight of the mean feature log-likelihood against the silence unit.
        silence_offset: added (times `w`) to silence scores: the feature fit credited to a silent frame.
        pause_penalty: log-score cost of each pause between words.
        min_pause_frames: shortest pause between words (frames of 5 ms).
        min_silence_frames: shortest leading or trailing silence (frames).
        min_phone_frames: shortest phone (frames; real phones are rarely under 10 ms, though espeak-ng's can be).
    """

    feature_weight: float = 4.0
    silence_offset: float = -0.15
    pause_penalty: float = 4.0
    min_pause_frames: int = 6
    min_silence_frames: int = 1
    min_phone_frames: int = 1

    @classmethod
    def from_dict(cls, data: dict | None) -> EmissionSettings:
        """From `dataclasses.asdict` output; missing keys keep their defaults."""
        return cls(**(data or {}))


def emission_scores(posteriors: np.ndarray, phones: AlignmentPhones, settings: EmissionSettings) -> np.ndarray:
    """Per-frame scores of each phone and of silence: `(frames, outputs)` posteriors -> `(frames, phones + 1)`
    float64, silence in the last column."""
    features = np.clip(posteriors[:, :-1].astype(np.float64), _EPS, 1.0 - _EPS)
    silence = np.clip(posteriors[:, -1].astype(np.float64), _EPS, 1.0 - _EPS)
    log_plus, log_minus = np.log(features), np.log1p(-features)
    mask = phones.target_mask.astype(np.float64)
    weight_plus = phones.targets * mask
    weight_minus = (1.0 - phones.targets) * mask
    counts = np.maximum(mask.sum(axis=1), 1.0)
    fit = (log_plus @ weight_plus.T + log_minus @ weight_minus.T) / counts[None, :]
    scores = np.empty((posteriors.shape[0], len(phones) + 1))
    scores[:, :-1] = np.log1p(-silence)[:, None] + settings.feature_weight * fit
    scores[:, -1] = np.log(silence) + settings.feature_weight * settings.silence_offset
    return scores


def free_scores(scores: np.ndarray) -> np.ndarray:
    """The best score any of the utterance's phones or silence gets at each frame, in any order: `(frames,)` from
    `emission_scores`'s `(frames, phones + 1)` (an upper bound of every path's emission; see the module
    docstring)."""
    return scores.max(axis=1)


@dataclasses.dataclass(frozen=True)
class PathUnits:
    """The result of `forced_align`.

    Attributes:
        units: `(kind, index, start_frame, end_frame)` in time order; kind `"phone"` (index into the phones),
            `"sil"` (leading or trailing) or `"pau"` (between words); `end_frame` exclusive.
        path_scores: `(frames,)` the emission score of the chosen unit at every frame.
        total: the path's total score (emissions and pause penalties).
    """

    units: list
    path_scores: np.ndarray
    total: float


def _graph(phones: AlignmentPhones, settings: EmissionSettings):
    """Expanded states: (kind, index, column, optional unit id, first state of its unit, penalty on entry)."""
    units = [("sil", 0, SILENCE_COLUMN, True, max(1, settings.min_silence_frames))]
    starts = phones.word_starts
    for index in range(len(phones)):
        if index > 0 and starts[index]:
            units.append(("pau", index, SILENCE_COLUMN, True, max(1, settings.min_pause_frames)))
        units.append(("phone", index, index, False, max(1, settings.min_phone_frames)))
    units.append(("sil", 1, SILENCE_COLUMN, True, max(1, settings.min_silence_frames)))
    states = []  # (unit number, column)
    unit_first, unit_last = [], []
    for number, (_, _, column, _, length) in enumerate(units):
        unit_first.append(len(states))
        states.extend((number, column) for _ in range(length))
        unit_last.append(len(states) - 1)
    return units, states, unit_first, unit_last


def forced_align(scores: np.ndarray, phones: AlignmentPhones, settings: EmissionSettings) -> PathUnits:
    """The best path through `[sil] p1 [pau] p2 ... pN [sil]` (see the module docstring).

    Args:
        scores: `(frames, phones + 1)` from `emission_scores`.
        phones: the phones.
        settings: pauses and minimum durations.

    Returns:
        `PathUnits`.

    Raises:
        ValueError: fewer frames than the phones need (audio far too short for its text).
    """
    units, states, unit_first, unit_last = _graph(phones, settings)
    num_frames = scores.shape[0]
    needed = sum(length for (_, _, _, optional, length) in units if not optional)
    if num_frames < needed:
        raise ValueError(
            f"audio far too short for its text: {num_frames} frames of 5 ms for {len(phones)} phones "
            f"(at least {needed} frames needed); check that the transcript belongs to this audio."
        )
    num_states = len(states)
    columns = np.array([column for _, column in states])
    unit_of = np.array([unit for unit, _ in states])
    first = np.zeros(num_states, bool)
    first[unit_first] = True
    optional = np.array([units[unit][3] for unit in unit_of])
    entry_penalty = np.array(
        [-settings.pause_penalty if units[unit][0] == "pau" and first[s] else 0.0 for s, unit in enumerate(unit_of)]
    )
    # A unit's first state may be entered by skipping an optional unit just before it.
    skip_from = np.full(num_states, -1)
    for number in range(1, len(units)):
        if units[number - 1][3] and number >= 2:
            skip_from[unit_first[number]] = unit_last[number - 2]
    has_skip = skip_from >= 0
    emissions = scores[:, columns]
    delta = np.full(num_states, -np.inf)
    delta[0] = emissions[0, 0]
    delta[unit_first[1]] = emissions[0, unit_first[1]] + entry_penalty[unit_first[1]]
    back = np.zeros((num_frames, num_states), np.int8)  # 0 stay, 1 from the previous state, 2 skip
    stay_allowed = np.ones(num_states, bool)
    stay_allowed[~np.isin(np.arange(num_states), unit_last)] = False  # inner states of a minimum duration move on
    for frame in range(1, num_frames):
        stay = np.where(stay_allowed, delta, -np.inf)
        advance = np.empty(num_states)
        advance[0] = -np.inf
        advance[1:] = delta[:-1] + entry_penalty[1:]
        skip = np.full(num_states, -np.inf)
        skip[has_skip] = delta[skip_from[has_skip]] + entry_penalty[has_skip]
        choice = np.argmax(np.stack([stay, advance, skip]), axis=0)
        best = np.choose(choice, [stay, advance, skip])
        back[frame] = choice
        delta = best + emissions[frame]
    end_candidates = [unit_last[-1]]
    if optional[unit_first[-1]]:
        end_candidates.append(unit_last[-2])
    state = max(end_candidates, key=lambda s: delta[s])
    total = float(delta[state])
    if not np.isfinite(total):
        raise ValueError(
            f"no alignment fits {num_frames} frames to {len(phones)} phones; the audio is far too short for its text."
        )
    path = np.empty(num_frames, np.int64)
    for frame in range(num_frames - 1, -1, -1):
        path[frame] = state
        step = back[frame, state]
        state = state if step == 0 else state - 1 if step == 1 else skip_from[state]
    unit_path = unit_of[path]
    change = np.flatnonzero(np.diff(unit_path)) + 1
    bounds = np.concatenate([[0], change, [num_frames]])
    result = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        kind, index, *_ = units[unit_path[start]]
        result.append((kind, index, int(start), int(end)))
    path_scores = emissions[np.arange(num_frames), path]
    return PathUnits(result, path_scores, total)

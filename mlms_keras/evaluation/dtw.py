"""Dynamic time warping of two frame sequences, for scoring speech whose timing differs from its reference.

A voice's durations are its own, so its frames do not line up with the teacher's; the voice report
(`mlms_keras.evaluation.voice_report`) aligns them by DTW on the mel-cepstra c1..c39 (energy c0 left out, as in
MCD) and scores the aligned frame pairs. Steps (1, 0), (0, 1) and (1, 1), each adding the cost of the cell it
enters; the path runs from the first to the last frame of both. The accumulated cost is computed one
anti-diagonal at a time (every cell of an anti-diagonal depends only on the two before it), so an utterance of
600 x 600 frames takes a few milliseconds in numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dtw_path", "mcep_distance_matrix"]


def mcep_distance_matrix(reference_mcep, generated_mcep) -> np.ndarray:
    """(N, M) Euclidean distances between the c1..cK of (N, K + 1) and (M, K + 1) mel-cepstra (c0 left out)."""
    reference = np.asarray(reference_mcep, np.float64)[:, 1:]
    generated = np.asarray(generated_mcep, np.float64)[:, 1:]
    squared = (reference**2).sum(1)[:, None] + (generated**2).sum(1)[None, :] - 2.0 * reference @ generated.T
    return np.sqrt(np.maximum(squared, 0.0))


def dtw_path(cost) -> tuple[np.ndarray, np.ndarray]:
    """The least-cost monotonic path through a (N, M) cost matrix from (0, 0) to (N - 1, M - 1).

    Args:
        cost: (N, M) non-negative finite local costs (e.g. `mcep_distance_matrix`).

    Returns:
        `(rows, columns)`: two (path length,) int64 arrays of matched indices, both non-decreasing, each step
        advancing one or both by 1; `max(N, M) <= path length <= N + M - 1`.

    Raises:
        ValueError: an empty or non-2-D matrix, or non-finite costs.
    """
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"cost: expected a non-empty (N, M) matrix, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost: all local costs must be finite")
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    total[0, 0] = 0.0
    for diagonal in range(2, rows + columns + 1):  # cells (i, j), 1-based, with i + j = diagonal
        i = np.arange(max(1, diagonal - columns), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        best = np.minimum(np.minimum(total[i - 1, j - 1], total[i - 1, j]), total[i, j - 1])
        total[i, j] = cost[i - 1, j - 1] + best
    path_rows, path_columns = [rows - 1], [columns - 1]
    i, j = rows, columns
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min(steps, key=lambda cell: total[cell])
        path_rows.append(i - 1)
        path_columns.append(j - 1)
    return np.asarray(path_rows[::-1], np.int64), np.asarray(path_columns[::-1], np.int64)

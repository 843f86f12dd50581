"""Ranking metrics, exactly as the Jukebox problem defines them."""

import numpy as np


def _discounts(n):
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def ndcg(recommended, held_out, k=100):
    """Per-user NDCG@k of recommendations against held-out plays.

    DCG sums 1/log2(i + 1) over positions i = 1..k whose song is held out;
    the ideal DCG sums it over i = 1..|held out|, *not* capped at k, as the
    problem's evaluator does.

    Parameters
    ----------
    recommended : ndarray, (n_users, >= k), int
        Song indices best first; -1 entries never hit.
    held_out : sparse (n_users, n_items)
        The held-out songs of the same users, row for row.

    Returns
    -------
    ndarray, (n_users,), float64
        NDCG of each user; NaN for users without held-out songs.
    """
    recommended = np.asarray(recommended)[:, :k]
    held_out = held_out.tocsr()
    n_held = np.diff(held_out.indptr)
    hits = _hits(recommended, held_out)
    disc = _discounts(max(k, int(n_held.max(initial=0))))
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[n_held]
    dcg = hits @ disc[: recommended.shape[1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, dcg / ideal, np.nan)


def recall(recommended, held_out, k=100):
    """Per-user share of held-out songs found in the top k (NaN without held-out songs)."""
    recommended = np.asarray(recommended)[:, :k]
    held_out = held_out.tocsr()
    n_held = np.diff(held_out.indptr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, _hits(recommended, held_out).sum(1) / n_held, np.nan)


def _hits(recommended, held_out):
    """float64 (n_users, k): 1 where the song at that position is held out for that user."""
    n_items = held_out.shape[1]
    rows = np.repeat(np.arange(recommended.shape[0], dtype=np.int64), recommended.shape[1])
    cols = recommended.reshape(-1).astype(np.int64)
    held_rows = np.repeat(np.arange(held_out.shape[0], dtype=np.int64), np.diff(held_out.indptr))
    held = held_rows * n_items + held_out.indices
    hit = np.isin(rows * n_items + cols, held) & (cols >= 0)
    return hit.reshape(recommended.shape).astype(np.float64)

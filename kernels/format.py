"""Recommendation lines as bytes, straight from the token arenas."""

from . import kernel


@kernel
def measure_lines(user_offsets, item_offsets, recommended, lengths):
    """``lengths[r]``: bytes of line r (user token, a blank and a token per item, newline).

    # Assumes: recommended is (n_rows, k) with entries -1 (skipped) or valid item indices.
    """
    for r in range(recommended.shape[0]):
        n = user_offsets[r + 1] - user_offsets[r] + 1
        for item in recommended[r]:
            if item >= 0:
                n += 1 + item_offsets[item + 1] - item_offsets[item]
        lengths[r] = n


@kernel
def write_lines(user_data, user_offsets, item_data, item_offsets, recommended, line_starts, out):
    """Write line r of ``measure_lines`` at ``out[line_starts[r]:]`` for every row r."""
    for r in range(recommended.shape[0]):
        w = line_starts[r]
        for i in range(user_offsets[r], user_offsets[r + 1]):
            out[w] = user_data[i]
            w += 1
        for item in recommended[r]:
            if item >= 0:
                out[w] = 32
                w += 1
                for i in range(item_offsets[item], item_offsets[item + 1]):
                    out[w] = item_data[i]
                    w += 1
        out[w] = 10

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import IdMap, format_recommendations

ids = st.text(alphabet="0123456789abc_é", min_size=1, max_size=5)


@settings(max_examples=100, deadline=None)
@given(st.lists(ids, unique=True, max_size=20), st.lists(ids, unique=True, min_size=1, max_size=30), st.integers(1, 8), st.data())
def test_format_matches_join(users, songs, k, data):
    recs = np.array(
        [data.draw(st.lists(st.integers(-1, len(songs) - 1), min_size=k, max_size=k)) for _ in users], np.int32
    ).reshape(len(users), k)
    text = bytes(format_recommendations(IdMap.from_tokens(users), IdMap.from_tokens(songs), recs)).decode()
    expected = "".join(" ".join([u] + [songs[j] for j in row if j >= 0]) + "\n" for u, row in zip(users, recs))
    assert text == expected

"""jukebox_fast: play counts in, the songs each user will most likely play next out.

>>> from jukebox_fast import read_listens, EDLAE
>>> plays = read_listens("listen_count.txt")            # doctest: +SKIP
>>> model = EDLAE().fit(plays.user_items)              # doctest: +SKIP
>>> songs, scores = model.recommend(plays.user_items[:10], k=100)  # doctest: +SKIP

Importing this package loads neither jax nor cupy and compiles nothing.
"""

from .data import IdMap, Interactions, select_rows, weigh
from .errors import (
    BackendUnavailableError,
    InputFormatError,
    JukeboxError,
    JukeboxWarning,
    MemoryBudgetError,
    ModelFileError,
    NotPositiveDefiniteError,
)
from .evaluation import evaluate_files, ndcg, recall
from .io import format_recommendations, read_listens, read_user_ids, write_output
from .models import (
    EASE,
    EDLAE,
    MODELS,
    ItemItemRecommender,
    LinearAutoencoder,
    Popularity,
    Recommender,
    SparseEDLAE,
    make_model,
)
from .persist import load_model, model_info, save_model
from .pipeline import recommend_ids
from .split import split_file

__version__ = "0.1.0"

__all__ = [
    "EASE",
    "EDLAE",
    "BackendUnavailableError",
    "IdMap",
    "InputFormatError",
    "Interactions",
    "ItemItemRecommender",
    "LinearAutoencoder",
    "MODELS",
    "Popularity",
    "Recommender",
    "SparseEDLAE",
    "JukeboxError",
    "JukeboxWarning",
    "MemoryBudgetError",
    "ModelFileError",
    "NotPositiveDefiniteError",
    "evaluate_files",
    "format_recommendations",
    "load_model",
    "make_model",
    "model_info",
    "ndcg",
    "read_listens",
    "read_user_ids",
    "recall",
    "recommend_ids",
    "save_model",
    "select_rows",
    "split_file",
    "weigh",
    "write_output",
]

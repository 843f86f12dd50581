"""Recommendation models: play counts (users x items) in, item indices out.

Every model follows the contract of ``Recommender`` (``base.py``). The
registry ``MODELS`` names the models the command line offers; adding a
model is one module and one entry here.
"""

from .autoencoder import LinearAutoencoder
from .base import Recommender
from .ease import EASE
from .edlae import EDLAE
from .itemitem import ItemItemRecommender
from .popularity import Popularity
from .sparse import SparseEDLAE

# The models ``--model`` offers, by name; the first is the default.
MODELS = {"edlae": EDLAE, "ease": EASE, "sparse": SparseEDLAE, "sgd": LinearAutoencoder, "popularity": Popularity}
DEFAULT_MODEL = "edlae"
# What ``run`` fits instead of the default model when the default's n x n matrices do not fit in memory.
LARGE_CATALOGUE_MODEL = "sparse"


def make_model(name: str = DEFAULT_MODEL, **params) -> Recommender:
    """The model registered as ``name``, with ``params`` (the rest at their defaults), checked.

    Raises ValueError, naming what is wrong, for an unknown model or
    parameter, or a value out of range.

    >>> make_model("ease", regularization=200.0)
    EASE(regularization=200.0, weighting='binary', num_threads=0)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the models are {', '.join(MODELS)}")
    cls = MODELS[name]
    unknown = [p for p in params if p not in cls.parameters()]
    if unknown:
        known = ", ".join(cls.parameters()) or "none"
        raise ValueError(f"{name} has no parameter {unknown[0]!r}; its parameters are {known}")
    model = cls(**params)
    model.check_params()
    return model


def model_name(model: Recommender) -> str:
    """The name ``model``'s class is registered under in ``MODELS``."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise TypeError(f"{type(model).__name__} is not a registered model (jukebox_fast.models.MODELS)")


__all__ = [
    "DEFAULT_MODEL", "EASE", "EDLAE", "LARGE_CATALOGUE_MODEL", "MODELS", "ItemItemRecommender", "LinearAutoencoder",
    "Popularity", "Recommender", "SparseEDLAE", "make_model", "model_name",
]

"""Recommendation models: all users x items in, dense song indices out."""

from .autoencoder import LinearAutoencoder
from .base import ItemItemRecommender
from .ease import EASE, gram_matrix, solve_ease
from .edlae import EDLAE

# The models ``--model`` offers: name -> class. Each class has a one-line
# ``summary`` and a ``from_options(args)`` that builds it from parsed CLI options.
MODELS = {"ease": EASE, "edlae": EDLAE, "sgd": LinearAutoencoder}


def make_model(options):
    """The model named by ``options.model``, configured from the parsed command-line options."""
    return MODELS[options.model].from_options(options)


__all__ = ["EASE", "EDLAE", "MODELS", "ItemItemRecommender", "LinearAutoencoder", "gram_matrix", "make_model", "solve_ease"]

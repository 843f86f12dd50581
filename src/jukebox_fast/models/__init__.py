"""Recommendation models: all users x items in, dense song indices out."""

from .base import ItemItemRecommender
from .ease import EASE, gram_matrix, solve_ease

__all__ = ["EASE", "ItemItemRecommender", "gram_matrix", "solve_ease"]

"""Serving: answer one user at a time (``Scorer``) or every user at once (``batch``).

No web framework here: the HTTP service (``recsys_service``) and the batch flow only call it.
"""

from recsys_core.serving.scorer import Prediction, Reason, Recommendation, ScoredItem, Scorer

__all__ = ["Prediction", "Reason", "Recommendation", "ScoredItem", "Scorer"]

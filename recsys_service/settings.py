"""Service settings, read from ``RECSYS_SERVE_*`` environment variables (or ``.env``): the
``serving`` section of the settings tree (``recsys_core.settings``), which the service takes
from ``get_settings().serving`` (this module re-exports its class and names the roles)."""

from __future__ import annotations

from recsys_core.settings import ServiceSettings

RANKING = "ranking"
RATING = "rating"
ROLES = (RANKING, RATING)

__all__ = ["RANKING", "RATING", "ROLES", "ServiceSettings"]

"""matplotlib for the plots written to files (evaluation, drift, replay): the Agg backend, chosen
before pyplot loads, so that no display is ever needed. A leaf: every package may plot."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (matplotlib is imported on the first call)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

"""The optional parts of recsys and the extra that installs each.

The training loop (``make run``, ``recsys train`` with the local models) needs only the core
dependencies. Spark (the ``spark-als`` models, the Spark evaluation engine), hyperparameter
studies (Optuna on Dask) and the recommendation service are extras of ``pyproject.toml``:
``make install`` installs them all. The modules that use them import them lazily, through
:func:`require`, so that a missing extra is one message saying what to install instead of an
``ImportError`` from deep inside a run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from recsys_core.exceptions import MissingExtraError

EXTRAS = {
    "spark": "the spark-als models, the Spark evaluation engine and the cost curves",
    "tune": "hyperparameter studies (recsys tune: Optuna trials on Dask)",
    "service": "the recommendation service (recsys serve)",
    "trees": "gradient-boosted trees (LightGBM): the rerank model and the blend's lightgbm stacker",
    "neural": "the neural models (mult-vae: PyTorch)",
}

INSTALL = {
    # PyPI's default torch wheel for Linux is a CUDA build of several GB: the CPU build first
    "neural": "install PyTorch's CPU build with `pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu`, then `pip install 'recsys[neural]'` (`make install` "
    "does both; a machine with a GPU may take PyPI's CUDA build instead)",
}
"""How to install an extra when it is more than ``pip install 'recsys[<extra>]'``."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, part of ``extra``; a :class:`MissingExtraError` saying what to install
    when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = INSTALL.get(
            extra,
            f"install it with `.venv/bin/uv pip install -e '.[{extra}]'` "
            f"(pip install 'recsys[{extra}]'), or `make install` for every extra",
        )
        raise MissingExtraError(
            f"{EXTRAS[extra]} need(s) the {extra!r} extra, which is not installed (no module "
            f"{exc.name or module!r}): {how}"
        ) from exc

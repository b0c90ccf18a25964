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
    "trees": "the rerank model (LightGBM LambdaMART)",
}


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, part of ``extra``; a :class:`MissingExtraError` saying what to install
    when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{EXTRAS[extra]} need(s) the {extra!r} extra, which is not installed (no module "
            f"{exc.name or module!r}): install it with `.venv/bin/uv pip install -e '.[{extra}]'` "
            f"(pip install 'recsys[{extra}]'), or `make install` for every extra"
        ) from exc

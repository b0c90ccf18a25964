"""Models are found by name in one registry: ``@register`` adds a class, ``create`` builds one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recsys_core.exceptions import ConfigError, UnknownModelError

if TYPE_CHECKING:  # the base class looks models up here (Recommender.load): no import back
    from recsys_core.models.base import Recommender

_REGISTRY: dict[str, type[Recommender]] = {}

# the module that defines each model; importing it fills the registry. A command that names one
# model imports its module only (the others cost imports of their own: scipy.linalg, threadpoolctl,
# ...); listing every model imports them all. tests/recsys_core/models/test_registry.py keeps this
# map in step with the @register decorators.
_MODULE_OF: dict[str, str] = {
    "bias": "recsys_core.models.baselines",
    "global-mean": "recsys_core.models.baselines",
    "popularity": "recsys_core.models.baselines",
    "recent-popularity": "recsys_core.models.recent_popularity",
    "sgd-mf": "recsys_core.models.sgd_mf",
    "item-knn": "recsys_core.models.knn",
    "item-knn-implicit": "recsys_core.models.knn",
    "user-knn": "recsys_core.models.knn",
    "content": "recsys_core.models.content",
    "hybrid": "recsys_core.models.hybrid",
    "als": "recsys_core.models.als",
    "dp-als": "recsys_core.models.dp_als",
    "svdpp": "recsys_core.models.svdpp",
    "bpmf": "recsys_core.models.bpmf",
    "implicit-als": "recsys_core.models.implicit_models",
    "implicit-bpr": "recsys_core.models.implicit_models",
    "ease": "recsys_core.models.ease",
    "blend": "recsys_core.models.blend",
    "spark-als": "recsys_core.models.spark_als",
    "spark-als-implicit": "recsys_core.models.spark_als",
    "mult-vae": "recsys_core.models.mult_vae",
    "rerank": "recsys_core.models.rerank",
}
_MODULES = tuple(dict.fromkeys(_MODULE_OF.values()))


def register(name: str):
    """Class decorator: register a ``Recommender`` subclass under ``name``."""

    def deco(cls: type[Recommender]) -> type[Recommender]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def available() -> list[str]:
    """Registered model names, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[Recommender]:
    if name not in _REGISTRY:
        if name in _MODULE_OF:
            importlib.import_module(_MODULE_OF[name])
        if name not in _REGISTRY:  # an unknown name: the error lists every model
            _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create(name: str, params: dict[str, Any] | None = None) -> Recommender:
    """Build model ``name`` with ``params`` (strings are converted to the fields' types)."""
    cls = get_model_class(name)
    return cls(**dict(params or {}))


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """Parse ``["factors=64", "lr=0.01"]`` into a dict (values stay strings)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad parameter {pair!r}; expected key=value, such as factors=64")
        out[key.strip()] = value.strip()
    return out


def describe() -> list[dict[str, Any]]:
    """Every model with its hyperparameters: name, type, default and description."""
    out = []
    for name in available():
        cls = _REGISTRY[name]
        params = []
        for field, info in cls.Config.model_fields.items():
            params.append(
                {
                    "name": field,
                    "type": getattr(info.annotation, "__name__", str(info.annotation)),
                    "default": info.default,
                    "description": info.description or "",
                }
            )
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(
            {
                "name": name,
                "summary": doc[0] if doc else "",
                "predicts_ratings": cls.predicts_ratings,
                "capabilities": cls.capabilities.as_dict(),
                "per_user_arrays": cls.per_user_arrays(),
                "params": params,
            }
        )
    return out

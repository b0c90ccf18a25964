"""recsys_core: the recommender library behind the recsys pipeline.

The library has no dependency on the orchestrator: data collection, validation rules, features,
models, metrics, the gate and the MLflow corner (``recsys_core.tracking``) are plain Python.
"""

__version__ = "0.1.0"

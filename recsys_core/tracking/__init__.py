"""The MLflow corner of the library: runs, the pyfunc model, the model registry.

Nothing else in ``recsys_core`` imports MLflow, so the algorithms stay usable without a server.
"""

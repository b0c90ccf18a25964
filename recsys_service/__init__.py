"""The recommendation service: FastAPI over the registry's champions (``recsys serve``).

``settings`` (what to serve, limits), ``live_models`` (loading, polling and swapping the models
behind the aliases), ``metrics`` (Prometheus), ``schemas`` (request and response bodies) and
``app`` (the routes). The scoring itself is ``recsys_core.serving``.
"""

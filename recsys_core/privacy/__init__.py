"""Privacy: differential-privacy accounting (``recsys_core.privacy.accounting``, by Google's
``dp-accounting``) and forgetting users (``recsys_core.privacy.forget``). The pseudonymous user
ids (HMAC-SHA256) are a leaf below the data packages, ``recsys_core.pseudonyms``."""

"""Privacy: differential-privacy accounting (``recsys_core.privacy.accounting``, by Google's
``dp-accounting``) and pseudonymous user ids (``recsys_core.privacy.pseudonyms``, HMAC-SHA256)."""

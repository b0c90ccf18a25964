"""Differential-privacy accounting: the privacy loss of noisy releases, computed by Google's
``dp-accounting`` (``recsys_core.privacy.accounting``)."""

"""The ``recsys`` command line (the only part of the project that prints)."""

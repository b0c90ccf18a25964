"""The stand-in __main__ of a pytest-xdist worker (tests/conftest.py): nothing runs here."""

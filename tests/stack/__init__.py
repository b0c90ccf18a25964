"""End-to-end tests against the loopback stack (a package: its ``stack`` fixture lives as long as
these tests, see conftest.py)."""

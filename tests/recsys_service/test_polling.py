"""The background poller: it checks again after a failure, and stops without waiting an interval."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from recsys_service.polling import Poller


def test_a_failing_check_is_logged_and_the_polling_goes_on(caplog: pytest.LogCaptureFixture):
    calls: list[int] = []
    third = threading.Event()

    def check() -> None:
        calls.append(len(calls))
        if len(calls) >= 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("store unreachable")

    poller = Poller(check, 0.01, "test-poller", "reading the store")
    with caplog.at_level(logging.ERROR, logger="recsys_service.polling"):
        poller.start()
        try:
            assert third.wait(10), f"the poller stopped after {len(calls)} check(s)"
        finally:
            poller.stop()
    assert poller.first_pass.is_set()
    failures = [r for r in caplog.records if r.name == "recsys_service.polling"]
    assert len(failures) == 1
    assert failures[0].getMessage() == "reading the store failed; retrying in 0.01s"
    assert "store unreachable" in caplog.text  # the traceback goes with it


def test_stop_is_prompt_and_no_check_follows_it():
    checked = threading.Event()
    calls: list[float] = []

    def check() -> None:
        calls.append(time.monotonic())
        checked.set()

    poller = Poller(check, 60.0, "test-poller", "checking")
    poller.start()
    assert checked.wait(10)
    started = time.monotonic()
    poller.stop(timeout=30)
    assert time.monotonic() - started < 5  # far under the 60 s interval
    assert not poller.running
    assert len(calls) == 1


def test_not_at_once_waits_an_interval_before_the_first_check():
    calls: list[int] = []
    poller = Poller(lambda: calls.append(1), 60.0, "test-poller", "checking", at_once=False)
    poller.start()
    poller.stop()
    assert calls == []
    assert not poller.first_pass.is_set()


def test_start_twice_runs_one_thread():
    gate = threading.Event()
    poller = Poller(gate.wait, 60.0, "test-poller-once", "checking")
    poller.start()
    poller.start()
    try:
        assert [t.name for t in threading.enumerate()].count("test-poller-once") == 1
    finally:
        gate.set()
        poller.stop()
    assert "test-poller-once" not in [t.name for t in threading.enumerate()]

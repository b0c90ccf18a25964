"""Quarantine sets exactly the rows breaking a row-level rule aside, with their reason."""

import pandas as pd
import pytest

from recsys_core.exceptions import DataValidationError
from recsys_core.validation import (
    REASONS,
    ValidationRules,
    quarantine,
    screen,
    validate,
    write_quarantined,
)

RULES = ValidationRules(max_timestamp=2_000_000_000, quarantine=True)


@pytest.fixture
def dirty(frame):
    """``frame`` with one bad row per reason, two reasons on row 6, and two duplicates."""
    frame.loc[0, "user"] = None
    frame.loc[1, "item"] = None
    frame.loc[2, "rating"] = float("nan")
    frame.loc[3, "rating"] = 0.0
    frame.loc[4, "rating"] = 5.5
    frame.loc[5, "timestamp"] = 3_000_000_000
    frame.loc[6, ["user", "rating"]] = [None, 9.0]  # counted once, under its first reason
    # rows 10 and 11 rated again: once later (the repeat is kept), once at the same time (the
    # later line is kept), as the latest duplicates policy would
    again = frame.iloc[[10, 11]].assign(
        timestamp=frame["timestamp"].iloc[[10, 11]] + [60, 0], rating=[4.0, 2.0]
    )
    return pd.concat([frame, again], ignore_index=True)


def test_quarantine_removes_exactly_the_bad_rows_and_counts_them(dirty):
    clean, rows, counts = quarantine(dirty, RULES)
    assert counts == {
        "null_user": 2,
        "null_item": 1,
        "null_rating": 1,
        "rating_out_of_scale": 2,
        "future_timestamp": 1,
        "duplicate": 2,
    }
    assert list(counts) == [r for r in REASONS if r in counts]
    assert sorted(rows.index) == [0, 1, 2, 3, 4, 5, 6, 10, 11]
    assert rows.loc[6, "reason"] == "null_user"
    assert rows.loc[10, "reason"] == rows.loc[11, "reason"] == "duplicate"
    assert len(clean) + len(rows) == len(dirty)
    assert list(clean.columns) == list(dirty.columns)
    assert clean.index.equals(pd.RangeIndex(len(clean)))
    # the latest rating of a repeated pair stays
    assert clean.iloc[-2:].reset_index(drop=True).equals(dirty.iloc[-2:].reset_index(drop=True))
    assert validate(clean, RULES).success


def test_a_duplicate_of_a_bad_row_is_not_counted_twice(frame):
    frame.loc[0, "rating"] = 9.0
    twice = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    _, rows, counts = quarantine(twice, RULES)
    assert counts == {"rating_out_of_scale": 2}
    assert len(rows) == 2


def test_clean_data_loses_nothing(frame):
    clean, rows, counts = quarantine(frame, RULES)
    assert counts == {} and rows.empty and "reason" in rows.columns
    pd.testing.assert_frame_equal(clean, frame)


def test_screen_quarantines_then_validates_and_records_the_counts(dirty):
    clean, rows, report = screen(dirty, RULES)
    assert report.success, report.summary()
    assert report.quarantined["duplicate"] == 2
    assert sum(report.quarantined.values()) == len(rows) == 9
    assert report.n_rows == len(clean)
    assert "after quarantining" in report.summary()


def test_screen_without_quarantine_fails_on_row_level_problems(dirty):
    with pytest.raises(DataValidationError, match="ratings outside"):
        screen(dirty, RULES.model_copy(update={"quarantine": False}), raise_on_failure=True)


def test_table_level_failures_cannot_be_quarantined(frame):
    small = frame.head(40).copy()
    small.loc[0, "rating"] = 9.0
    with pytest.raises(DataValidationError, match="fewer than 100 rows") as info:
        screen(small, RULES, raise_on_failure=True)
    assert info.value.report.quarantined == {"rating_out_of_scale": 1}
    clean, rows, counts = quarantine(frame.drop(columns=["timestamp"]), RULES)
    assert counts == {} and not validate(clean, RULES).success


def test_quarantined_rows_are_written_to_parquet(dirty, tmp_path):
    _, rows, _ = quarantine(dirty, RULES)
    path = write_quarantined(rows, tmp_path / "q" / "quarantined.parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == ["row", "user", "item", "rating", "timestamp", "reason"]
    assert back["row"].tolist() == rows.index.tolist()
    assert back["reason"].tolist() == rows["reason"].tolist()

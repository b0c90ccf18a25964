"""The Validate stage: a Great Expectations suite over the interaction table, built in code.

::

    rules = ValidationRules(rating_min=1.0, rating_max=5.0, min_rows=100)
    report = validate(frame, rules)          # ValidationReport: checks, warnings, counts
    raise_for_failures(report)               # DataValidationError listing each failure
    clean, rows, counts = quarantine(frame, rules)   # set bad rows aside, with a reason
    clean, rows, report = screen(frame, rules)       # quarantine if rules.quarantine, validate

Great Expectations is imported on the first validation, not with this package.
"""

from recsys_core.validation.quarantine import (
    REASONS,
    Quarantined,
    quarantine,
    row_failures,
    write_quarantined,
)
from recsys_core.validation.report import CheckResult, ValidationReport, ValidationWarning
from recsys_core.validation.rules import ValidationRules
from recsys_core.validation.validator import (
    Screened,
    raise_for_failures,
    screen,
    sparsity_warnings,
    validate,
)

__all__ = [
    "REASONS",
    "CheckResult",
    "Quarantined",
    "Screened",
    "ValidationReport",
    "ValidationRules",
    "ValidationWarning",
    "quarantine",
    "raise_for_failures",
    "row_failures",
    "screen",
    "sparsity_warnings",
    "validate",
    "write_quarantined",
]

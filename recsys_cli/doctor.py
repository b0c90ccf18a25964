"""``recsys doctor``: check the configuration and the servers it points at, say what to fix."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Check the tracking server, the artifact store, registry versions with missing artifacts,
    the buckets, the Prefect API and, when RECSYS_SERVE_URL is set, the recommendation service.

    Exit 0 when nothing is broken, a fresh install included (no model promoted yet: the
    report says the next step); 1 when a check failed."""
    import json
    import sys
    from dataclasses import asdict

    from recsys_core.tracking.doctor import run_checks

    checks = run_checks()
    problems = [c for c in checks if not c.ok]
    if as_json:
        sys.stdout.write(json.dumps([asdict(c) for c in checks]) + "\n")
    else:
        table = Table(title="recsys doctor", title_justify="left")
        table.add_column("check")
        table.add_column("", justify="center")
        table.add_column("seen")
        table.add_column("fix")
        for c in checks:
            mark = (
                "[dim]-[/]"
                if c.skipped
                else "[yellow]state[/]"
                if c.state
                else "[green]ok[/]"
                if c.ok
                else "[red]FAIL[/]"
            )
            table.add_row(c.name, mark, c.detail, c.fix if not c.ok or c.skipped or c.state else "")
        console = Console()
        console.print(table)
        if problems:
            console.print(f"[red]{len(problems)} problem(s)[/]: see the fix column.")
        else:
            console.print("[green]all checks passed[/]")
            # a fresh install: say what to do first (the states' next step, once)
            for step in dict.fromkeys(c.fix for c in checks if c.state):
                console.print(f"next step: {step}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)

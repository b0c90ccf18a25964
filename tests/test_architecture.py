"""The house rules: recsys_core never imports Prefect; GX and MLflow stay out of its import."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_recsys_core_source_never_mentions_prefect():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "recsys_core").rglob("*.py")
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []


def test_importing_the_library_loads_no_orchestrator_nor_heavy_clients():
    code = (
        "import importlib, pkgutil, sys, recsys_core\n"
        "skip = ('recsys_core.tracking', 'recsys_core.validation')\n"
        "for m in pkgutil.walk_packages(recsys_core.__path__, 'recsys_core.'):\n"
        "    if not m.name.startswith(skip):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in ('prefect', 'mlflow', 'great_expectations') if n in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == ""


def test_tracking_and_validation_import_without_prefect():
    code = (
        "import sys, recsys_core.tracking.registry, recsys_core.tracking.pyfunc, "
        "recsys_core.validation\nprint('prefect' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"

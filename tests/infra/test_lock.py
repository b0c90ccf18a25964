"""constraints.txt, the lock of `make install` and of the worker image, covers pyproject.toml."""

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, list[tuple[str, str | None]]]:
    """name -> [(version, marker)] of every pin in the lock."""
    pins: dict[str, list[tuple[str, str | None]]] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line or line.startswith((" ", "#")):
            continue
        spec, _, marker = line.partition(";")
        name, version = spec.strip().split("==")
        pins.setdefault(_canonical(name), []).append((version, marker.strip() or None))
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# PyTorch (the neural extra) stays out of the lock: a universal lock would pin PyPI's CUDA build;
# `make install` installs its CPU build with pip (the Makefile's torch-cpu target)
UNLOCKED_EXTRAS = {"neural"}


def test_every_dependency_and_extra_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for name, extra in project.get("optional-dependencies", {}).items():
        if name not in UNLOCKED_EXTRAS:
            wanted += extra
    pins = _pins()
    env = default_environment()
    missing, outside = [], []
    for text in wanted:
        req = Requirement(text)
        versions = [
            v
            for v, marker in pins.get(_canonical(req.name), [])
            if marker is None or Requirement(f"x; {marker}").marker.evaluate(env)
        ]
        if not versions:
            missing.append(req.name)
        elif not req.specifier.contains(versions[0], prereleases=True):
            outside.append(f"{req.name}=={versions[0]} not in {req.specifier}")
    assert not missing, f"not in constraints.txt (run `make lock`): {missing}"
    assert not outside, f"constraints.txt is stale (run `make lock`): {outside}"


def test_make_install_and_the_worker_image_use_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK := constraints.txt" in makefile
    install = makefile.split("$(STAMP): pyproject.toml $(LOCK)", 1)[1].split("\n\n", 1)[0]
    assert "-c $(LOCK)" in install
    assert "uv pip compile pyproject.toml $(foreach e," in makefile
    # `make install` installs every extra the lock pins, and the unlocked ones by their own step
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    listed = makefile.split("EXTRAS := ", 1)[1].split("\n", 1)[0].split(",")
    assert sorted(listed) == sorted(set(extras) - UNLOCKED_EXTRAS)
    assert "-e '.[$(EXTRAS)]'" in install
    assert "torch-cpu" in install
    assert not any(line.startswith("torch==") for line in (ROOT / "constraints.txt").open())
    assert "-c constraints.txt" in (ROOT / "infra" / "worker" / "Dockerfile").read_text()

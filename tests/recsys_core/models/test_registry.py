"""The registry finds a model by name, importing the module that defines it and no other."""

import subprocess
import sys

import pytest

from recsys_core.exceptions import UnknownModelError
from recsys_core.models import registry


def test_the_module_map_names_the_module_that_registers_each_model():
    registry._load_all()
    registered = {name: cls.__module__ for name, cls in registry._REGISTRY.items()}
    known = {n: m for n, m in registered.items() if m.startswith("recsys_core.models.")}
    assert known == registry._MODULE_OF


def test_a_named_model_loads_its_own_module_only():
    # a fresh process: this one has every model module loaded already
    code = (
        "import sys\n"
        "from recsys_core.models.registry import _MODULES, get_model_class\n"
        "print(get_model_class('sgd-mf').__name__)\n"
        "print(','.join(m for m in _MODULES if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    name, loaded = out.stdout.split()
    assert name == "SGDMF"
    assert loaded == "recsys_core.models.sgd_mf"


def test_an_unknown_name_lists_every_model():
    with pytest.raises(UnknownModelError) as info:
        registry.get_model_class("no-such-model")
    for name in registry._MODULE_OF:
        assert name in str(info.value)

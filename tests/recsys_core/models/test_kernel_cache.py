"""Cached kernels load without numba's compiler, and give what numba's own loading gives."""

import subprocess
import sys
import textwrap

from recsys_core.models.kernel_cache import load_kernels_without_compiler

# a top-k (parallel kernel) and a fit of sgd-mf (serial kernels) on fixed data, then whether
# numba's compiler registries were loaded
SCRIPT = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "lean":
        from recsys_core.models.kernel_cache import load_kernels_without_compiler
        assert load_kernels_without_compiler()
    import numpy as np
    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.features import Interactions
    from recsys_core.models.registry import create
    from recsys_core.models.top_k import top_k

    items, scores = top_k(np.random.default_rng(0).random((300, 400)), 7)
    model = create("sgd-mf", {"factors": 6, "epochs": 3})
    model.fit(Interactions.from_frame(generate(config_for("tiny", seed=5)).interactions))
    print(items.tobytes().hex()[:64], scores.sum().hex(), model.user_factors_.sum().hex())
    print("numba.np.arraymath" in sys.modules)
    """
)


def _run(*args: str, cwd=None) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
        timeout=600,
    )
    return out.stdout.split("\n")


def test_the_pinned_numba_is_one_whose_cache_loading_was_checked():
    # False after a numba upgrade: read FunctionCache.load_overload again, then widen _TESTED
    assert load_kernels_without_compiler()


def test_cached_kernels_load_without_the_compiler_and_compute_the_same():
    own = _run(SCRIPT, "numba")  # also fills the cache where it was empty
    lean = _run(SCRIPT, "lean")
    assert lean[0] == own[0]
    assert own[1] == "True"  # numba's own loading readies the compiler ...
    assert lean[1] == "False"  # ... the lean one does not


def test_a_kernel_missing_from_the_cache_is_still_compiled(tmp_path):
    (tmp_path / "fresh_kernel.py").write_text(
        textwrap.dedent(
            """
            import numba
            import numpy as np

            @numba.njit(cache=True)
            def spread(x):
                return np.sort(x)[-1] - np.min(x) + np.sum(x)
            """
        )
    )
    code = textwrap.dedent(
        """
        import numpy as np
        from recsys_core.models.kernel_cache import load_kernels_without_compiler
        from recsys_core.models.top_k import top_k
        load_kernels_without_compiler()
        top_k(np.ones((2, 3)), 1)  # a cached load first: the compiler is not readied
        import fresh_kernel
        print(fresh_kernel.spread(np.array([3.0, 1.0, 2.0])))
        """
    )
    assert _run(code, cwd=tmp_path)[0] == "8.0"

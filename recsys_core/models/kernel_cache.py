"""Loading numba's cached kernels without readying its compiler, for one-shot commands.

The first time a process loads a kernel from numba's cache (``@njit(cache=True)``: machine code
in ``__pycache__``), numba readies its whole compiler: its typing and lowering registries, some
fifty modules (``numba.np.arraymath``, ``cffi``, scipy's BLAS bindings, ...), 0.3 to 0.5 s of CPU
that a command such as ``recsys evaluate`` pays before its first epoch. A cached kernel needs none
of it, only numba's runtime (NRT), whose functions the kernel's code is linked against.

:func:`load_kernels_without_compiler` makes every cache load of this process ready the runtime
only. A kernel that is not in the cache (first run, edited source, another machine) is compiled
as before: numba's compiler readies its contexts itself on each compilation. Loaded or compiled,
a kernel is the same machine code (the tests compare results both ways).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_TESTED = ((0, 68), (0, 68))
"""The numba releases whose cache loading was read for this (the pinned one): there
``FunctionCache.load_overload`` readies the target context (``refresh``), then calls
``_load_overload``. Outside them, nothing changes."""


def load_kernels_without_compiler() -> bool:
    """Make numba's cache loads ready its runtime only; True where that is now so (the numba
    release is one this was checked against), False where numba's own behaviour is kept."""
    import numba
    from numba.core.caching import FunctionCache

    if getattr(FunctionCache.load_overload, "_recsys_lean", False):
        return True
    low, high = _TESTED
    needed = ("_load_overload", "_guard_against_spurious_io_errors")
    if not low <= tuple(numba.version_info[:2]) <= high or not all(
        hasattr(FunctionCache, name) for name in needed
    ):
        log.debug("numba %s: cached kernels load as numba does", numba.__version__)
        return False
    from numba.core.runtime import rtsys

    def load_overload(self, sig, target_context):
        # numba's own, less target_context.refresh(): the runtime is what the cached code links
        # against (initialized once per process; numba's refresh starts with the same call)
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    load_overload._recsys_lean = True  # type: ignore[attr-defined]
    FunctionCache.load_overload = load_overload  # type: ignore[method-assign]
    return True

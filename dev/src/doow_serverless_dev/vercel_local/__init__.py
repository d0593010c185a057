"""Run a Vercel Python function on this machine under the real runtime (``vercel-runtime``).

This package plays only Vercel's platform side: the IPC socket the runtime reports to
(``VERCEL_IPC_PATH``), the requests with their ``x-vercel-internal-*`` headers and
deadline, and the kill when an invocation passes its deadline. The function is loaded and
served by the runtime's own ``vercel_runtime.vc_init``, in a Python >= 3.12 interpreter
that has ``vercel-runtime`` installed. The demo, the benchmarks and the tests use it.
``_drain`` plays a Log Drain: deliveries of log entries, signed as Vercel signs them.

    with VercelFunction("api/index.py", project_dir="examples/vercel", python=py312) as fn:
        response = fn.request("GET", "/api/hello")

:class:`BuiltVercelFunction` runs what ``vercel build`` wrote instead (a ``.func`` folder,
with its generated bootstrap, its vendored dependencies and runtime, its ``.vc-config.json``),
under a bare interpreter of the runtime it names:

    with BuiltVercelFunction(".vercel/output/functions/api/index.func", python=py312) as fn:
        response = fn.request("GET", "/api/hello")
"""

from __future__ import annotations

from ._build import BuildError, FunctionBuild, read_build
from ._drain import DrainDelivery, drain_delivery, drain_entries, sign
from ._function import BuiltVercelFunction, VercelFunction, VercelResponse

__all__ = [
    "BuildError",
    "BuiltVercelFunction",
    "DrainDelivery",
    "FunctionBuild",
    "VercelFunction",
    "VercelResponse",
    "drain_delivery",
    "drain_entries",
    "read_build",
    "sign",
]

"""doow-serverless-dev: the local tools around doow-serverless, never deployed with a function.

- :mod:`.collector`: a Doow-compatible ingest server (SQLite, fault injection, a page);
- :mod:`.lambda_local`: a Lambda function run by the real runtime client, with Lambda's
  Runtime API played locally (``doow-serverless invoke``);
- :mod:`.vercel_local`: a Vercel function run by the real Vercel Python runtime, with the
  platform's side of its IPC played locally;
- :mod:`.azure_local`: an Azure Functions app run by the real library worker, with the
  host played locally.

It adds the ``collector``, ``events`` and ``invoke`` commands to ``doow-serverless``.
"""

from __future__ import annotations

__version__ = "0.1.0"  # released with doow-serverless of the same version

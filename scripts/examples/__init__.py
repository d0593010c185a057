"""The examples built with their platforms' own tools, and what those tools built, run.

    python -m scripts.examples vercel|lambda|azure [--root CHECKOUT]

For one example: run the command block its README marks as the build (``<!-- build ...``),
in the example's folder, exactly as written; check the artefact's layout; then run the
artefact itself under the platform's real runtime, with an interpreter that has nothing else
installed, against a local collector, and require one request's event to arrive once. Any
step failing fails the check (exit 1, saying which and why): a dependency left out of the
example's requirements, a module not packaged, a wrong handler. ``make example-*`` (and so
``make test``) run it; the platform tests then run the same artefacts further.
"""

"""Check the SAM template's Python functions where cfn-lint does not: Runtime and Timeout.

    python scripts/check_template.py template.yaml

Exits 1 naming each problem (an unsupported Runtime, a Timeout outside 1..900 s, ...).
"""

from __future__ import annotations

import sys

from doow_serverless_dev.lambda_local._template import TemplateError, read_functions


def main(argv: list[str]) -> int:
    paths = argv or ["template.yaml"]
    failed = False
    for path in paths:
        try:
            functions = read_functions(path)
        except TemplateError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed = True
            continue
        if not functions:
            print(f"{path}: no AWS::Serverless::Function to check", file=sys.stderr)
            failed = True
        for function in functions:
            for problem in function.problems():
                print(f"{path}: {problem}", file=sys.stderr)
                failed = True
        if not failed:
            print(f"{path}: {len(functions)} function(s) pass the Runtime/Timeout checks")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

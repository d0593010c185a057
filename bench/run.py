"""Run every benchmark in one go and write the figures into docs/benchmarks.md.

make bench                      # full size
make bench BENCH_ARGS=--quick   # a smaller, faster pass
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Each module exposes run(quick) -> a markdown section. Later platforms add theirs here.
SECTIONS = [
    "bench.core_bench",
    "bench.profile_flush",
    "bench.lambda_bench",
    "bench.vercel_bench",
    "bench.azure_bench",
    "bench.daemon_bench",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    parts = [
        "# Benchmarks",
        "",
        f"Measured {datetime.date.today().isoformat()} with `make bench"
        f"{' BENCH_ARGS=--quick' if args.quick else ''}` on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Medians; ratios are side by side in one run.",
    ]
    for name in SECTIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        section = module.run(quick=args.quick)
        print(section, flush=True)
        parts += ["", section]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()

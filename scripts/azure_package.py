"""Build an Azure Functions deployment package of a Python app, the way Azure's docs describe a
local build (no Core Tools needed):

- the app's files at the package's root: host.json, function_app.py (or the v1 function
  folders), requirements.txt and the rest, less what .funcignore lists;
- every dependency in requirements.txt installed by pip into .python_packages/lib/site-packages,
  for the Python that runs this script: run it with the app's Python version, on Linux x86-64;
- a zip of the package's contents (not of its folder), for
  ``az functionapp deployment source config-zip --build-remote false`` or, from the folder,
  ``func azure functionapp publish APP --no-build``.

    python3.13 azure_package.py APP_DIR --output build/app [--find-links DIR]

Writes OUTPUT/ and OUTPUT.zip (replacing them); exits 1 saying what is missing or failed.
Standard library only.
"""

from __future__ import annotations

import argparse
import fnmatch
import platform
import shutil
import subprocess
import sys
from pathlib import Path

SITE_PACKAGES = Path(".python_packages/lib/site-packages")
# Never part of a package, whatever .funcignore says (Core Tools leaves them out too).
ALWAYS_LEFT_OUT = (".python_packages", "local.settings.json", ".funcignore", "__pycache__")


class PackageError(Exception):
    """The app cannot be packaged; the message says why."""


def ignored_patterns(app_dir: Path) -> list[str]:
    path = app_dir / ".funcignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [*ALWAYS_LEFT_OUT, *patterns]


def is_ignored(relative: Path, patterns: list[str]) -> bool:
    """As .funcignore (gitignore-like) reads: a pattern matches the path or any of its parts."""
    text = relative.as_posix()
    for pattern in patterns:
        bare = pattern.strip("/")
        if fnmatch.fnmatch(text, bare) or any(fnmatch.fnmatch(p, bare) for p in relative.parts):
            return True
    return False


def copy_app(app_dir: Path, output: Path) -> list[Path]:
    patterns = ignored_patterns(app_dir)
    copied = []
    for source in sorted(app_dir.rglob("*")):
        relative = source.relative_to(app_dir)
        if source == output or output in source.parents or is_ignored(relative, patterns):
            continue
        if source.is_file():
            target = output / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(relative)
    return copied


def check_app(output: Path) -> None:
    if not (output / "host.json").is_file():
        raise PackageError("no host.json at the app's root")
    if not (output / "requirements.txt").is_file():
        raise PackageError("no requirements.txt at the app's root")
    if not (output / "function_app.py").is_file() and not list(output.glob("*/function.json")):
        raise PackageError("neither a function_app.py (v2) nor */function.json (v1) at the root")


def install_requirements(output: Path, find_links: list[str]) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(output / SITE_PACKAGES),
        "-r",
        str(output / "requirements.txt"),
    ]
    for location in find_links:
        command += ["--find-links", location]
    if subprocess.run(command, check=False).returncode != 0:
        raise PackageError("pip could not install requirements.txt (its output is above)")


def build(app_dir: Path, output: Path, find_links: list[str]) -> Path:
    if not app_dir.is_dir():
        raise PackageError(f"{app_dir} is not a folder")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        print(
            "azure_package: Azure runs Linux x86-64; dependencies built here may not run there",
            file=sys.stderr,
        )
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    copy_app(app_dir, output)
    check_app(output)
    install_requirements(output, find_links)
    archive = shutil.make_archive(str(output), "zip", root_dir=output)
    return Path(archive)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app_dir", type=Path, help="the function app's folder (host.json's)")
    parser.add_argument("--output", type=Path, required=True, help="the package folder to write")
    parser.add_argument(
        "--find-links",
        action="append",
        default=[],
        help="a folder of wheels pip may install from (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        archive = build(args.app_dir.resolve(), args.output.resolve(), args.find_links)
    except (PackageError, OSError) as exc:
        print(f"azure_package: {exc}", file=sys.stderr)
        return 1
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    print(
        f"azure_package: {args.output} and {archive.name} (Python {python}, {platform.machine()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

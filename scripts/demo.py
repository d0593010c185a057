"""`make demo`: the whole path, end to end, on a local collector.

Starts `doow-serverless collector` on a free port, sends events through the Python tracker
and through `doow-serverless send`, runs the platform examples that are available, shows
what arrived, prints the page's URL, and stops cleanly. Exits non-zero if anything that
was sent did not arrive exactly once.

    make demo                 # run and stop
    make demo DEMO_ARGS=--keep  # keep the collector (and its page) up until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.demo_common import DEMO_KEY, ROOT, request_json

BIN = Path(sys.executable).parent


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_collector(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "doow-serverless"), "collector", "--port", str(port), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            request_json(f"{url}/healthz")
            return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the collector did not start") from None
            time.sleep(0.05)


def send_with_the_tracker(url: str) -> int:
    from doow_serverless import DoowTracker

    say("Python: DoowTracker.track() x 3, then flush(timeout=2.0)")
    tracker = DoowTracker(DEMO_KEY, endpoint=url, attribution={"env": "demo"})
    tracker.track("tokens", 1024, "lic_demo", unit="tokens", attribution={"model": "gpt-4o"})
    tracker.track("tokens", 512, "lic_demo", unit="tokens", attribution={"model": "gpt-4o-mini"})
    tracker.track("api_calls", 1, "lic_demo", idempotency_key="demo-order-1")
    result = tracker.flush(timeout=2.0)
    print(f"   {result}")
    tracker.shutdown()
    return 3


def send_with_the_cli(url: str) -> int:
    say("CLI: three lines piped into `doow-serverless send`")
    lines = [
        {"metric": "api_calls", "quantity": 1, "license_id": "lic_cli"},
        {"metric": "tokens", "quantity": 256, "license_id": "lic_cli", "unit": "tokens"},
        {"metric": "storage_gb", "quantity": 2.5, "license_id": "lic_cli"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    print("   " + text.strip().replace("\n", "\n   "))
    completed = subprocess.run(
        [str(BIN / "doow-serverless"), "send", "--api-key", DEMO_KEY, "--endpoint", url],
        input=text,
        text=True,
        capture_output=True,
        check=False,
    )
    print(f"   exit {completed.returncode}: {completed.stderr.strip()}")
    if completed.returncode != 0:
        raise SystemExit("doow-serverless send failed")

    say("CLI: a malformed line is reported with its number and skipped (exit status 1)")
    bad = subprocess.run(
        [str(BIN / "doow-serverless"), "send", "--api-key", DEMO_KEY, "--endpoint", url],
        input='{"metric": "api_calls", "quantity": 0, "license_id": "lic_cli"}\n',
        text=True,
        capture_output=True,
        check=False,
    )
    print(f"   exit {bad.returncode}: " + bad.stderr.strip().replace("\n", "\n   "))
    if bad.returncode == 0:
        raise SystemExit("a malformed line should have made `send` exit non-zero")
    return len(lines)


def run_platform_demos(url: str) -> int:
    """Each platform example that is present adds its part: (module, function)."""
    sent = 0
    for module_name, function in [
        ("scripts.demo_lambda", "run_lambda_demo"),
        ("scripts.demo_forwarder", "run_forwarder_demo"),
        ("scripts.demo_vercel", "run_vercel_demo"),
        ("scripts.demo_azure", "run_azure_demo"),
    ]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        result = getattr(module, function)(url)
        sent += int(result or 0)
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the collector up until Ctrl-C")
    args = parser.parse_args()

    folder = ROOT / ".demo"
    folder.mkdir(exist_ok=True)
    db = folder / "collector.sqlite3"
    for leftover in folder.glob("collector.sqlite3*"):
        leftover.unlink()
    # The functions' /tmp (and so their spool): the demo's own, empty at the start.
    temporary = folder / "tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    os.environ["TMPDIR"] = str(temporary)

    say("Starting a local Doow-compatible collector")
    process, url = start_collector(db)
    print(f"   {url}  (events stored in {db.relative_to(ROOT)})")
    try:
        os.environ["DOOW_TRACK_ENDPOINT"] = url
        expected = send_with_the_tracker(url)
        expected += send_with_the_cli(url)
        expected += run_platform_demos(url)

        say("What arrived: `doow-serverless events`")
        subprocess.run([str(BIN / "doow-serverless"), "events", "--endpoint", url], check=True)
        stats = request_json(f"{url}/stats")
        stored, duplicates = stats["events_stored"], stats["duplicates"]
        print(f"\n   sent {expected}, stored {stored}, duplicates acknowledged {duplicates}")
        say(f"The collector's page: {url}/")
        if stored != expected:
            print(f"   MISMATCH: expected {expected} events, found {stored}", file=sys.stderr)
            return 1
        if args.keep:
            print("   serving until Ctrl-C ...", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                process.wait()
        if not args.keep:
            print("   (it stops with the demo: `make demo DEMO_ARGS=--keep` keeps it up)")
        print("\nDemo complete: every event arrived exactly once.")
        return 0
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# SAM local testing on a Debian machine without Docker: podman as the engine, and a
# Lambda-like python3.12 image built locally (Debian-based, NOT Amazon Linux).
#
#   scripts/sam-local.sh prepare       install podman (apt), apply its settings, build the image
#   scripts/sam-local.sh start | stop  the Docker-compatible socket (stop: by the pid start wrote)
#   scripts/sam-local.sh run CMD...    start, run CMD with DOCKER_HOST set, stop; CMD's status
#
# Runs as root, non-interactively. Idempotent: what is already in place is checked, not redone.
# PYTHON312 names the interpreter copied into the image (default: pyenv's 3.12, else PATH's).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SAM_LOCAL_DIR=$REPO/scripts/sam_local
PYTHON312=${PYTHON312:-$(ls -d /root/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | head -n1 || true)}
PYTHON312=${PYTHON312:-$(command -v python3.12 || true)}

say() { echo "sam-local: $*"; }
fail() {
  echo "sam-local: $*" >&2
  exit 1
}

# shellcheck source=sam_local/engine.sh
. "$SAM_LOCAL_DIR/engine.sh"
# shellcheck source=sam_local/image.sh
. "$SAM_LOCAL_DIR/image.sh"
# shellcheck source=sam_local/socket.sh
. "$SAM_LOCAL_DIR/socket.sh"

prepare() {
  [[ $(id -u) == 0 ]] || fail "prepare installs packages and configures podman: run it as root"
  [[ -n "$PYTHON312" ]] || fail "no python3.12 to put in the image (set PYTHON312=...)"
  local started=$SECONDS
  install_engine
  configure_engine
  build_image
  say "ready in $((SECONDS - started)) s; \`$0 start\` serves DOCKER_HOST=$(docker_host) for sam local ... --skip-pull-image"
  say "note: $LAMBDA_IMAGE here is Debian $(debian_suite) with Python 3.12 and awslambdaric; not Amazon Linux"
}

run() {
  (($# > 0)) || fail "run needs a command"
  local running_before=false status=0
  socket_running && running_before=true
  start_socket
  "$@" || status=$?
  # A service that was running before this run belongs to whoever started it.
  [[ "$running_before" == true ]] || stop_socket
  return "$status"
}

case ${1:-} in
  prepare) prepare ;;
  start) start_socket ;;
  stop) stop_socket ;;
  run) shift && run "$@" ;;
  *) fail "usage: $0 prepare | start | stop | run CMD..." ;;
esac

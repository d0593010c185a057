# podman's Docker-compatible API socket, which SAM CLI finds through DOCKER_HOST.
# Sourced by scripts/sam-local.sh. Started in the background; stopped by the pids it wrote.
#
# Podman before 4.4 frames the log lines an attach replays one byte short, and SAM CLI then
# loses the function's output now and then (attach_framing.py says how). With such a podman,
# DOCKER_HOST is a small pass-through that repairs that framing, in front of podman's socket.

SOCKET_DIR=/run/doow-serverless
PODMAN_SOCKET=$SOCKET_DIR/podman.sock
REPAIR_SOCKET=$SOCKET_DIR/docker.sock
PODMAN_PID=$SOCKET_DIR/podman-service.pid
REPAIR_PID=$SOCKET_DIR/attach-framing.pid

podman_frames_replayed_logs_short() {
  local version
  version=$(podman version --format '{{.Client.Version}}' 2>/dev/null) || return 1
  [[ "$(printf '%s\n4.4.0\n' "$version" | sort -V | head -n1)" != 4.4.0 ]]
}

# Decided once podman is installed (prepare may be what installs it).
docker_host() {
  if podman_frames_replayed_logs_short; then
    echo "unix://$REPAIR_SOCKET"
  else
    echo "unix://$PODMAN_SOCKET"
  fi
}

PODMAN_COMMAND=(podman system service --time=0 "unix://$PODMAN_SOCKET")
REPAIR_COMMAND=(/usr/bin/python3 "$SAM_LOCAL_DIR/attach_framing.py" "$REPAIR_SOCKET" "$PODMAN_SOCKET")

# The pid in file $1 if that process still runs the command $2... (a pid file can outlive
# its process, and the pid be reused).
live_pid() {
  local pidfile=$1 pid
  shift
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ -n "$pid" && "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == "$* " ]] && echo "$pid"
}

start_background() { # pidfile socket name command...
  local pidfile=$1 socket=$2 name=$3 pid
  shift 3
  if pid=$(live_pid "$pidfile" "$@"); then
    say "socket: $name already serving $socket (pid $pid)"
    return
  fi
  rm -f "$socket"
  "$@" >"$pidfile.log" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 100); do
    if [[ -S "$socket" ]] && curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; then
      say "socket: $name serving $socket (pid $pid)"
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$pidfile.log" >&2
  fail "socket: $name did not come up (its log is above)"
}

start_socket() {
  DOCKER_HOST=$(docker_host)
  export DOCKER_HOST
  mkdir -p "$SOCKET_DIR"
  start_background "$PODMAN_PID" "$PODMAN_SOCKET" "podman system service" "${PODMAN_COMMAND[@]}"
  if [[ "$DOCKER_HOST" == "unix://$REPAIR_SOCKET" ]]; then
    start_background "$REPAIR_PID" "$REPAIR_SOCKET" "attach framing repair (podman < 4.4)" \
      "${REPAIR_COMMAND[@]}"
  fi
  say "socket: DOCKER_HOST=$DOCKER_HOST"
}

stop_background() { # pidfile socket name command...
  local pidfile=$1 socket=$2 name=$3 pid
  shift 3
  if ! pid=$(live_pid "$pidfile" "$@"); then
    rm -f "$pidfile"
    return
  fi
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
  fi
  rm -f "$pidfile" "$pidfile.log" "$socket"
  say "socket: $name stopped (pid $pid)"
}

stop_socket() {
  stop_background "$REPAIR_PID" "$REPAIR_SOCKET" "attach framing repair" "${REPAIR_COMMAND[@]}"
  stop_background "$PODMAN_PID" "$PODMAN_SOCKET" "podman system service" "${PODMAN_COMMAND[@]}"
}

socket_running() {
  live_pid "$PODMAN_PID" "${PODMAN_COMMAND[@]}" >/dev/null
}

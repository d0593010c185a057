# The container engine for SAM local testing: Debian's podman, configured for this kind of
# machine. Sourced by scripts/sam-local.sh.

ENGINE_PACKAGES=(podman runc netavark aardvark-dns iptables mmdebstrap)
ENGINE_CONF=/etc/containers/containers.conf.d/50-doow-sam-local.conf

install_engine() {
  local missing=()
  for package in "${ENGINE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    say "engine: $(podman --version) installed"
    return
  fi
  say "engine: installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${ENGINE_PACKAGES[@]}" >/dev/null
  say "engine: $(podman --version) installed"
}

configure_engine() {
  local nofile nproc wanted
  # Rootful podman raises a container's nofile to 1048576 and nproc to 4194304, more than
  # this sandbox lets a process set ("error setting rlimit type 7: operation not
  # permitted"): at most this shell's hard limits. runc: crun refuses the cgroup layout
  # here ("cgroups in hybrid mode not supported").
  nofile=$(hard_limit -n 32768)
  nproc=$(hard_limit -u 32768)
  wanted=$(
    cat <<CONF
# Written by doow-serverless scripts/sam-local.sh: settings podman needs on this machine.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
  )
  if [[ -f "$ENGINE_CONF" && "$(cat "$ENGINE_CONF")" == "$wanted" ]]; then
    say "engine: settings in place ($ENGINE_CONF)"
    return
  fi
  mkdir -p "$(dirname "$ENGINE_CONF")"
  printf '%s\n' "$wanted" >"$ENGINE_CONF"
  say "engine: settings written to $ENGINE_CONF"
}

hard_limit() {
  local limit
  limit=$(ulimit -H "$1")
  if [[ "$limit" == unlimited || "$limit" -gt "$2" ]]; then
    echo "$2"
  else
    echo "$limit"
  fi
}

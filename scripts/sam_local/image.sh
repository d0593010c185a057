# The Lambda-like base image SAM CLI runs python3.12 functions on, built locally.
# Sourced by scripts/sam-local.sh. SAM wants public.ecr.aws/lambda/python:3.12-x86_64 and adds
# its own Runtime Interface Emulator on top; no registry serves AWS's image here, so this makes
# one from a minimal Debian root filesystem, the machine's Python 3.12 and awslambdaric.
# It is NOT Amazon Linux: same layout, runtime client and environment, different userland.

LAMBDA_IMAGE=public.ecr.aws/lambda/python:3.12-x86_64
# What SAM builds on top of LAMBDA_IMAGE; it never rebuilds it while it exists.
RAPID_IMAGE=public.ecr.aws/lambda/python:3.12-rapid-x86_64
IMAGE_LABEL=org.doow-serverless.sam-local.inputs
# What the Python 3.12 build and awslambdaric's native client link against, and
# certificates as AWS's image has them.
IMAGE_PACKAGES=ca-certificates,libbz2-1.0,libexpat1,libffi8,liblzma5,libncursesw6,libreadline8,libsqlite3-0,libssl3,libstdc++6,libtirpc3,libuuid1,zlib1g

image_inputs() {
  # Everything the image is made of: a change in any of them rebuilds it.
  {
    cat "$SAM_LOCAL_DIR/image.sh" "$REPO/requirements/lambda.txt"
    "$PYTHON312" -VV
    echo "$IMAGE_PACKAGES $(debian_suite)"
  } | sha256sum | cut -c1-16
}

debian_suite() {
  . /etc/os-release && echo "$VERSION_CODENAME"
}

image_current() {
  local have
  have=$(podman image inspect --format "{{index .Labels \"$IMAGE_LABEL\"}}" "$LAMBDA_IMAGE" 2>/dev/null) || return 1
  [[ "$have" == "$1" ]]
}

build_image() {
  local inputs
  inputs=$(image_inputs)
  if image_current "$inputs"; then
    say "image: $LAMBDA_IMAGE is current ($(image_size))"
    return
  fi
  say "image: building $LAMBDA_IMAGE (Debian $(debian_suite) based, NOT Amazon Linux)"
  local work
  work=$(mktemp -d /var/tmp/doow-sam-image.XXXXXX)
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  local root="$work/rootfs" old
  old=$(podman image inspect --format '{{.Id}}' "$LAMBDA_IMAGE" 2>/dev/null || true)
  mmdebstrap --quiet --variant=essential --include="$IMAGE_PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$(debian_suite)" "$root" /etc/apt/sources.list.d/debian.sources
  install_python "$root"
  install_runtime "$root"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf - . | podman import --quiet \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV TZ=:/etc/localtime' \
    --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
    --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
    --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
    --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
    --change 'WORKDIR /var/task' \
    --change "LABEL $IMAGE_LABEL=$inputs" \
    --change 'LABEL org.doow-serverless.sam-local.base="Debian, not Amazon Linux"' \
    - "$LAMBDA_IMAGE" >/dev/null
  # SAM keeps using a rapid image built on the old base while it exists.
  podman image rm --force "$RAPID_IMAGE" >/dev/null 2>&1 || true
  [[ -z "$old" ]] || podman image rm "$old" >/dev/null 2>&1 || true
  say "image: built $LAMBDA_IMAGE ($(image_size))"
}

install_python() {
  local root=$1 prefix
  prefix=$("$PYTHON312" -c 'import sys; print(sys.base_prefix)')
  mkdir -p "$root/var/lang"
  # The interpreter and its standard library; not its tests, static library, Tk or the
  # packages installed into that interpreter (the function brings its own).
  tar -C "$prefix" -cf - \
    --exclude='./lib/python3.12/test' --exclude='./lib/python3.12/idlelib' \
    --exclude='./lib/python3.12/tkinter' --exclude='./lib/python3.12/turtledemo' \
    --exclude='./lib/python3.12/config-3.12-*' --exclude='./lib/python3.12/site-packages/*' \
    --exclude='./lib/python3.12/lib-dynload/_tkinter*' --exclude='./lib/python3.12/lib-dynload/_test*' \
    --exclude='./lib/pkgconfig' --exclude='./include' --exclude='./share' \
    --exclude='__pycache__' \
    ./bin ./lib | tar -C "$root/var/lang" -xf -
  chroot "$root" env LD_LIBRARY_PATH=/var/lang/lib /var/lang/bin/python3.12 -c 'import ssl, ctypes, sqlite3, json, uuid'
}

install_runtime() {
  local root=$1
  "$PYTHON312" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile \
    --no-deps --only-binary=:all: --target "$root/var/runtime" \
    -r "$REPO/requirements/lambda.txt"
  cat >"$root/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Lambda's python3.12 bootstrap, as the Runtime Interface Emulator runs it: the real runtime
# interface client, with the handler Lambda names in $_HANDLER.
export PYTHONPATH="/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.12 -m awslambdaric "$_HANDLER"
BOOTSTRAP
  chmod 0755 "$root/var/runtime/bootstrap"
  mkdir -p "$root/var/task" "$root/opt"
  chroot "$root" env LD_LIBRARY_PATH=/var/lang/lib /var/lang/bin/python3.12 -c 'import sys; sys.path.insert(0, "/var/runtime"); import runtime_client, awslambdaric.bootstrap'
}

image_size() {
  podman image inspect --format '{{.Size}}' "$LAMBDA_IMAGE" | awk '{printf "%d MB", $1 / 1000000}'
}

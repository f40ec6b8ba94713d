#!/usr/bin/env bash
# An emulated Raspberry Pi on this machine: an arm64 Debian 12 userland run by qemu-user-static
# (QEMU_CPU=cortex-a72) with aarch64 wheels of numpy, ai-edge-litert and onnxruntime, behind a real
# sshd on 127.0.0.1 whose sessions run inside that userland. Everything lives in one cache folder and
# is built once; later calls reuse it.
#
#   pi-emulator.sh build    build (or reuse) the userland, the wheels and the x86 tflite-runtime venv
#   pi-emulator.sh start    build, then start sshd (no-op when already running); prints HOST/PORT/...
#   pi-emulator.sh stop     stop the sshd this script started
#   pi-emulator.sh status   running or not, and the connection settings
#   pi-emulator.sh env      the connection settings only (KEY=value lines, for `eval` or a test)
#   pi-emulator.sh run CMD  run a shell command inside the emulated Pi without ssh (debugging)
#   pi-emulator.sh clean    stop and remove the cache folder
#
# Settings (environment): PI_EMULATOR_DIR (cache, default ~/.cache/mobilenet-edge/pi-emulator),
# PI_EMULATOR_PORT (default 22022), PI_EMULATOR_MIRROR (Debian mirror), PI_EMULATOR_CORES (cores
# shown in the fake /proc/cpuinfo; default: this machine's, so XNNPACK's view matches /sys).
#
# Inside the emulated Pi:
#   /usr/bin/python3                      Debian's 3.11 + numpy 2, ai-edge-litert, onnxruntime
#   /opt/tflite-runtime/bin/python3       3.11 + tflite-runtime 2.14 + numpy<2 (an older Pi image)
#   /opt/bare-python/bin/python3          3.11 with nothing installed (a device missing a runtime)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE="${PI_EMULATOR_DIR:-${HOME:-/root}/.cache/mobilenet-edge/pi-emulator}"
PORT="${PI_EMULATOR_PORT:-22022}"
MIRROR="${PI_EMULATOR_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm                      # Debian 12, as on Raspberry Pi OS (bookworm): python3.11
PYVER=3.11
CORES="${PI_EMULATOR_CORES:-$(nproc)}"
ROOTFS="$CACHE/rootfs"
SSHDIR="$CACHE/ssh"
# Packages of the userland: python, the C++ runtime the wheels need, the shell tools bench_remote uses
# (mktemp, tar, rm, timeout) and sftp-server/scp so that scp works as against a real Pi.
PACKAGES="base-files,base-passwd,python3,libstdc++6,dash,bash,coreutils,tar,gzip,findutils,grep,sed,procps,openssh-sftp-server,openssh-client"
# Manylinux tags that Debian 12's glibc 2.36 accepts (pip does not widen --platform by itself).
PLATFORMS=""
for v in 2_36 2_35 2_34 2_33 2_32 2_31 2_30 2_29 2_28 2_27 2_26 2_17; do
  PLATFORMS="$PLATFORMS --platform manylinux_${v}_aarch64"
done
PLATFORMS="$PLATFORMS --platform manylinux2014_aarch64"

log() { printf 'pi-emulator: %s\n' "$*" >&2; }
die() { printf 'pi-emulator: error: %s\n' "$*" >&2; exit 1; }

# The wheels of the emulated Pi pinned to the versions of the x86 environment, so that ARM and x86
# outputs of the same artifact are compared with the same runtime release.
pin() {
  local name="$1" line=""
  if [[ -f "$REPO_ROOT/requirements.lock" ]]; then
    line="$(grep -i -E "^${name//-/[-_]}==" "$REPO_ROOT/requirements.lock" | head -n1 || true)"
  fi
  printf '%s\n' "${line:-$name}"
}
WHEELS_MAIN="$(pin numpy) $(pin ai-edge-litert) $(pin onnxruntime)"
WHEELS_TFLITE="tflite-runtime==2.14.0 numpy<2"
SPEC="v1 $SUITE $PACKAGES | $WHEELS_MAIN | $WHEELS_TFLITE"

host_python() {
  # pip of the project's venv when there is one (recent pip), else this machine's python3.
  if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then echo "$REPO_ROOT/.venv/bin/python"; else echo python3; fi
}

ensure_host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v unshare >/dev/null || missing+=(util-linux)
  command -v flock >/dev/null || missing+=(util-linux)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "expected root to install ${missing[*]}, received uid $EUID"
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates >/dev/null
  fi
}

# qemu-user runs arm64 binaries through binfmt_misc, so a chroot's /bin/sh, python3 and whatever they
# exec all run transparently. Registration is kernel state: redo it after every boot.
ensure_binfmt() {
  local bm=/proc/sys/fs/binfmt_misc
  if [[ ! -e $bm/register ]]; then
    mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null \
      || die "expected binfmt_misc to be mountable at $bm (root, a kernel with binfmt_misc), received a failed mount"
  fi
  if [[ ! -e $bm/qemu-aarch64 ]]; then
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [[ -f $conf ]] || die "expected $conf from qemu-user-static, received no such file"
    grep -v '^#' "$conf" > "$bm/register"
  fi
  grep -q '^enabled' "$bm/qemu-aarch64" || echo 1 > "$bm/qemu-aarch64"
}

stamp_ok() { [[ -f "$ROOTFS/.pi-emulator-spec" ]] && [[ "$(cat "$ROOTFS/.pi-emulator-spec")" == "$SPEC" ]]; }

# A folder that looks like a venv of the userland's python3.11 with its own site-packages.
make_env() {
  local root="$1" prefix="$2"
  mkdir -p "$root$prefix/bin" "$root$prefix/lib/python$PYVER/site-packages"
  ln -sf /usr/bin/python$PYVER "$root$prefix/bin/python3"
  ln -sf python3 "$root$prefix/bin/python"
  printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = %s\n' "$PYVER" > "$root$prefix/pyvenv.cfg"
}

pip_target() {  # pip_target ROOT_SITE WHEELDIR REQUIREMENTS...
  local site="$1" wheels="$2"; shift 2
  # shellcheck disable=SC2086
  "$(host_python)" -m pip install -q --disable-pip-version-check --no-warn-conflicts --no-index --find-links "$wheels" \
    --target "$site" $PLATFORMS --only-binary=:all: --python-version $PYVER --implementation cp "$@"
  rm -rf "$site/bin"  # console scripts with an x86 shebang; the runner does not need them
}

build_rootfs() {
  stamp_ok && { log "userland cached: $ROOTFS"; return 0; }
  local t0=$SECONDS tmp="$CACHE/rootfs.partial"
  rm -rf "$tmp" && mkdir -p "$tmp" "$CACHE/wheels"
  log "building the arm64 Debian $SUITE userland (mmdebstrap, extract only: nothing runs under emulation)"
  # 'extract' unpacks the packages and their dependencies without maintainer scripts: seconds instead
  # of the minutes a debootstrap second stage takes under qemu, and enough for python3.
  mmdebstrap --quiet --variant=extract --arch=arm64 --include="$PACKAGES" "$SUITE" "$tmp" \
    "deb $MIRROR $SUITE main" >&2
  mkdir -p "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp" "$tmp/root" "$tmp/run"
  chmod 1777 "$tmp/tmp"
  # What the skipped maintainer scripts would have made.
  [[ -f $tmp/etc/passwd ]] || cp "$tmp/usr/share/base-passwd/passwd.master" "$tmp/etc/passwd"
  [[ -f $tmp/etc/group ]] || cp "$tmp/usr/share/base-passwd/group.master" "$tmp/etc/group"
  echo raspberrypi > "$tmp/etc/hostname"
  # binfmt entries without the F flag look for the interpreter inside the chroot.
  mkdir -p "$tmp/usr/libexec/qemu-binfmt"
  cp /usr/bin/qemu-aarch64-static "$tmp/usr/bin/qemu-aarch64-static"
  ln -sf ../../bin/qemu-aarch64-static "$tmp/usr/libexec/qemu-binfmt/aarch64-binfmt-P"

  log "fetching aarch64 wheels: $WHEELS_MAIN; $WHEELS_TFLITE"
  # shellcheck disable=SC2086
  "$(host_python)" -m pip download -q --disable-pip-version-check --dest "$CACHE/wheels" $PLATFORMS \
    --only-binary=:all: --python-version $PYVER --implementation cp $WHEELS_MAIN >&2
  # shellcheck disable=SC2086
  "$(host_python)" -m pip download -q --disable-pip-version-check --dest "$CACHE/wheels" $PLATFORMS \
    --only-binary=:all: --python-version $PYVER --implementation cp $WHEELS_TFLITE >&2
  # shellcheck disable=SC2086
  pip_target "$tmp/usr/local/lib/python$PYVER/dist-packages" "$CACHE/wheels" $WHEELS_MAIN
  make_env "$tmp" /opt/tflite-runtime
  # shellcheck disable=SC2086
  pip_target "$tmp/opt/tflite-runtime/lib/python$PYVER/site-packages" "$CACHE/wheels" $WHEELS_TFLITE
  make_env "$tmp" /opt/bare-python

  local machine
  machine="$(chroot "$tmp" /usr/bin/python3 -c 'import platform; print(platform.machine())')" \
    || die "expected the arm64 python3 to run under qemu, received a failure (is binfmt_misc registered?)"
  [[ $machine == aarch64 ]] || die "expected aarch64 inside the userland, received $machine"
  printf '%s' "$SPEC" > "$tmp/.pi-emulator-spec"
  rm -rf "$ROOTFS" && mv "$tmp" "$ROOTFS"
  log "userland ready in $((SECONDS - t0)) s: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
}

# tflite-runtime 2.14 + numpy<2 on x86 as well: the runner's older-runtime path, checked natively.
build_x86_tflite_runtime() {
  local venv="$CACHE/x86-tflite-runtime"
  [[ -x $venv/bin/python && -f $venv/.ready ]] && { log "x86 tflite-runtime venv cached: $venv"; return 0; }
  local py=""
  for cand in python3.11 /usr/bin/python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys, venv; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null; then
      py="$cand"; break
    fi
  done
  [[ -n $py ]] || die "expected a python 3.8-3.11 for the tflite-runtime 2.14 wheels, received none on PATH"
  log "building the x86 tflite-runtime 2.14 + numpy<2 venv with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $WHEELS_TFLITE >&2
  touch "$venv/.ready"
}

write_session_files() {
  mkdir -p "$SSHDIR"
  chmod 700 "$SSHDIR"
  [[ -f $SSHDIR/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C pi-emulator-host -f "$SSHDIR/ssh_host_ed25519_key"
  [[ -f $SSHDIR/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C pi-emulator-client -f "$SSHDIR/id_ed25519"
  cp "$SSHDIR/id_ed25519.pub" "$SSHDIR/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1-2 "$SSHDIR/ssh_host_ed25519_key.pub")" > "$SSHDIR/known_hosts"

  # The /proc/cpuinfo of a Raspberry Pi 4 (Cortex-A72: implementer 0x41, part 0xd08). qemu 7.2 shows
  # the x86 host's, which XNNPACK's cpuinfo cannot parse on arm64, so it would run without XNNPACK.
  {
    for ((i = 0; i < CORES; i++)); do
      printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
      printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done
    printf 'Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000e3u1a7ed\n'
    printf 'Model\t\t: Raspberry Pi 4 Model B Rev 1.1 (emulated: qemu-user cortex-a72)\n'
  } > "$CACHE/cpuinfo"

  # Every ssh session (commands, scp, sftp) enters the userland through this wrapper: a private mount
  # and UTS namespace (nothing to clean up afterwards), the fake cpuinfo over the chroot's /proc.
  cat > "$CACHE/enter.sh" <<EOF
#!/bin/sh
# Generated by pi-emulator.sh: runs \$SSH_ORIGINAL_COMMAND (or a login shell) inside the emulated Pi.
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "pi-emulator: binfmt for aarch64 is not registered; run pi-emulator.sh start" >&2; exit 126; }
exec unshare --mount --uts --propagation private /bin/sh -c '
  set -e
  R=\$1
  mount -t proc proc "\$R/proc"
  mount --bind "\$2" "\$R/proc/cpuinfo"
  mount --rbind /sys "\$R/sys"
  mount --rbind /dev "\$R/dev"
  hostname raspberrypi
  cd "\$R"
  exec chroot "\$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/sh LANG=C.UTF-8 \\
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin QEMU_CPU=cortex-a72 \\
    /bin/sh -c "cd /root; \${SSH_ORIGINAL_COMMAND:-exec /bin/bash -l}"
' enter "$ROOTFS" "$CACHE/cpuinfo"
EOF
  chmod 755 "$CACHE/enter.sh"

  cat > "$SSHDIR/sshd_config" <<EOF
# Generated by pi-emulator.sh: the emulated Raspberry Pi's sshd, on the loopback only.
Port $PORT
ListenAddress 127.0.0.1
HostKey $SSHDIR/ssh_host_ed25519_key
PidFile $CACHE/sshd.pid
AuthorizedKeysFile $SSHDIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
# The keys live in the cache folder (maybe under /tmp), which sshd would otherwise reject.
StrictModes no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
ForceCommand $CACHE/enter.sh
EOF
}

sshd_pid() {
  local pid
  [[ -f $CACHE/sshd.pid ]] || return 1
  pid="$(cat "$CACHE/sshd.pid")"
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -q sshd "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

print_env() {
  cat <<EOF
HOST=root@127.0.0.1
PORT=$PORT
IDENTITY=$SSHDIR/id_ed25519
KNOWN_HOSTS=$SSHDIR/known_hosts
PROFILE=pi-emulator
PI_EMULATOR_DIR=$CACHE
TFLITE_RUNTIME_PYTHON=/opt/tflite-runtime/bin/python3
BARE_PYTHON=/opt/bare-python/bin/python3
X86_TFLITE_RUNTIME_PYTHON=$CACHE/x86-tflite-runtime/bin/python
EOF
}

cmd_build() {
  ensure_host_tools
  ensure_binfmt
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  build_rootfs
  build_x86_tflite_runtime
  write_session_files
  flock -u 9
}

cmd_start() {
  cmd_build
  if pid="$(sshd_pid)"; then
    log "sshd already running (pid $pid) on 127.0.0.1:$PORT"
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      die "expected port $PORT on 127.0.0.1 to be free, received a listener there (set PI_EMULATOR_PORT)"
    fi
    mkdir -p /run/sshd && chmod 755 /run/sshd   # sshd's privilege-separation directory
    /usr/sbin/sshd -t -f "$SSHDIR/sshd_config"
    /usr/sbin/sshd -f "$SSHDIR/sshd_config" -E "$CACHE/sshd.log"
    for _ in $(seq 50); do sshd_pid >/dev/null && break; sleep 0.1; done
    pid="$(sshd_pid)" || die "expected sshd to start, received no process (see $CACHE/sshd.log)"
    log "sshd started (pid $pid) on 127.0.0.1:$PORT"
  fi
  print_env
  cat <<EOF
# e.g.: make bench-remote HOST=root@127.0.0.1 PORT=$PORT IDENTITY=$SSHDIR/id_ed25519 KNOWN_HOSTS=$SSHDIR/known_hosts PROFILE=pi-emulator
#       ssh -p $PORT -i $SSHDIR/id_ed25519 -o UserKnownHostsFile=$SSHDIR/known_hosts root@127.0.0.1 uname -m
EOF
}

cmd_stop() {
  if pid="$(sshd_pid)"; then
    kill "$pid"
    log "sshd stopped (pid $pid)"
  else
    log "sshd not running"
  fi
  rm -f "$CACHE/sshd.pid"
}

cmd_status() {  # exit status 0 when sshd runs, 3 when it does not (as `service status` does)
  local pid running=3
  if pid="$(sshd_pid)"; then echo "running: sshd pid $pid on 127.0.0.1:$PORT"; running=0; else echo "stopped"; fi
  if stamp_ok; then echo "userland: $ROOTFS"; else echo "userland: not built"; fi
  print_env
  return $running
}

cmd_run() {
  stamp_ok || die "expected a built userland in $ROOTFS, received none (run pi-emulator.sh build)"
  ensure_binfmt
  [[ -x $CACHE/enter.sh ]] || write_session_files
  SSH_ORIGINAL_COMMAND="$*" exec "$CACHE/enter.sh"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) print_env ;;
  run) shift; cmd_run "$@" ;;
  clean) cmd_stop; rm -rf "$CACHE"; log "removed $CACHE" ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac

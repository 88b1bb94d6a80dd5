# shellcheck shell=bash
# Environment of this repository, for bash:   source scripts/env.sh
#
# Run scripts/bootstrap.sh (or `make bootstrap`) once first. This file then
#   * activates the virtualenv with the PyPI ROS 2 wheels (when the bootstrap chose it), or
#     expects the ROS 2 distribution it was bootstrapped with to be sourced already;
#   * sources .deps/install/local_setup.bash (the generated tf2_msgs, where it was needed) and
#     install/local_setup.bash (this workspace);
#   * sets the DDS/ROS variables, keeping values exported before:
#       ROS_AUTOMATIC_DISCOVERY_RANGE  default LOCALHOST  (no DDS traffic leaves the machine)
#       ROS_DOMAIN_ID                  default 42
#       RMW_IMPLEMENTATION             default rmw_fastrtps_cpp, when that rmw is installed
#       PYTHONUNBUFFERED=1
# Robots and other machines: export your own values first, e.g.
#   ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET ROS_DOMAIN_ID=0 make demo
# Safe to source more than once, from any directory, and under `set -eu`.

_ptz_env_main() {
  local root venv mode recorded_venv flags="$-"
  root="$(builtin cd "$(dirname "${BASH_SOURCE[0]}")/.." >/dev/null && pwd -P)"
  venv="${PTZ_VENV:-$root/.venv}"
  mode=""
  if [ -f "$root/.deps/mode" ]; then
    { read -r mode; read -r recorded_venv; } <"$root/.deps/mode" || true
    if [ -n "${recorded_venv:-}" ]; then venv="$recorded_venv"; fi
  elif [ -z "${ROS_DISTRO:-}" ] && [ -x "$venv/bin/python" ]; then
    mode=venv
  fi
  set +eu

  case "$mode" in
    venv)
      if [ ! -f "$venv/bin/activate" ]; then
        echo "scripts/env.sh: no virtualenv at $venv: run scripts/bootstrap.sh (make bootstrap)" >&2
      else
        if [ "${VIRTUAL_ENV:-}" != "$venv" ]; then
          VIRTUAL_ENV_DISABLE_PROMPT=1 source "$venv/bin/activate"
        fi
        # The ROS 2 wheels' CMake/ament prefix is the venv itself.
        case ":${AMENT_PREFIX_PATH:-}:" in *":$venv:"*) ;;
          *) export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
        case ":${CMAKE_PREFIX_PATH:-}:" in *":$venv:"*) ;;
          *) export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
        # Let the wheels' Python set its own LD_LIBRARY_PATH (see scripts/bootstrap.sh).
        unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
      fi
      ;;
    distro)
      if [ -z "${ROS_DISTRO:-}" ]; then
        echo "scripts/env.sh: this checkout was bootstrapped against a ROS 2 distribution:" \
          "source its setup.bash first (e.g. /opt/ros/jazzy/setup.bash)" >&2
      fi
      ;;
    *)
      if [ -z "${ROS_DISTRO:-}" ]; then
        echo "scripts/env.sh: not bootstrapped yet: run scripts/bootstrap.sh (make bootstrap)" >&2
      fi
      ;;
  esac

  # Overlays: the generated tf2_msgs (if any), then this workspace. local_setup, not setup:
  # the venv prefix has no setup files to chain.
  if [ -f "$root/.deps/install/local_setup.bash" ]; then
    COLCON_CURRENT_PREFIX="$root/.deps/install" source "$root/.deps/install/local_setup.bash"
  fi
  if [ -f "$root/install/local_setup.bash" ]; then
    COLCON_CURRENT_PREFIX="$root/install" source "$root/install/local_setup.bash"
  fi

  export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
  export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
  if [ -z "${RMW_IMPLEMENTATION:-}" ]; then
    local prefix parts
    IFS=: read -r -a parts <<<"${AMENT_PREFIX_PATH:-}"
    for prefix in "${parts[@]}"; do
      if [ -e "$prefix/share/ament_index/resource_index/packages/rmw_fastrtps_cpp" ]; then
        export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
        break
      fi
    done
  fi
  export PYTHONUNBUFFERED=1
  export PTZ_ROOT="$root"
  # The package's executables (ptz-calib, ptz_driver, ...) without `ros2 run`, which is not
  # installable from PyPI.
  case ":$PATH:" in
    *":$root/install/ptz_calibration/lib/ptz_calibration:"*) ;;
    *) export PATH="$root/install/ptz_calibration/lib/ptz_calibration:$PATH" ;;
  esac

  # Restore the caller's -e / -u.
  case "$flags" in *e*) set -e ;; esac
  case "$flags" in *u*) set -u ;; esac
  return 0
}
_ptz_env_main
unset -f _ptz_env_main

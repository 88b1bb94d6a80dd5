# ptz_calibration: set-up, build, demo, tests and benchmarks.
#
#   make demo        set up what is missing, then run the simulated dual-PTZ demo (calibrate, track, localize)
#   make demo-tour   the single-process tour of the drivers' TF and CameraInfo (the first demo)
#   make test        set up what is missing, then run the test suite (pytest)
#   make bench       set up what is missing, then run bench/run_all.py
#   make bootstrap   only the set-up (scripts/bootstrap.sh; cached, a few seconds when done)
#   make build       the set-up, and colcon build the workspace even if it looks up to date
#   make clean       remove build/ install/ log/ (keeps the venv and .deps/)
#   make distclean   also remove .venv/ and .deps/
#
# Variables: TESTS=ptz_calibration/test/test_model_io.py (what pytest runs; default the whole
# ptz_calibration/test), PYTEST_ARGS="-k kinematics -x", JUNIT=path/to/junit.xml, TEST_TIMEOUT=seconds
# per test (default 300), DEMO_ARGS, BENCH_ARGS, TEST_DOMAIN_ID (77), BENCH_DOMAIN_ID (78).
# Tests and benchmarks always run with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST on their own
# domain; the demo keeps ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE exported before `make`
# (see README, Setup).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TESTS ?= ptz_calibration/test
PYTEST_ARGS ?=
JUNIT ?=
TEST_TIMEOUT ?= 300
DEMO_ARGS ?=
BENCH_ARGS ?=

# Test and bench runs stay on the loopback and on their own DDS domains, so they never meet a
# demo (42 by default) or a robot, whatever the calling shell exports.
TEST_DOMAIN_ID ?= 77
BENCH_DOMAIN_ID ?= 78

ENV := source scripts/env.sh

.PHONY: help bootstrap build demo demo-tour test bench clean distclean

help:
	@sed -n '3,9p' Makefile | sed 's/^# \{0,1\}//'

bootstrap:
	@bash scripts/bootstrap.sh

build:
	@bash scripts/bootstrap.sh --rebuild

demo: bootstrap
	@$(ENV); \
	echo "[demo] ROS_DOMAIN_ID=$$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$$ROS_AUTOMATIC_DISCOVERY_RANGE"; \
	exec install/ptz_calibration/lib/ptz_calibration/ptz_stereo_demo $(DEMO_ARGS)

demo-tour: bootstrap
	@$(ENV); \
	echo "[demo] ROS_DOMAIN_ID=$$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$$ROS_AUTOMATIC_DISCOVERY_RANGE"; \
	exec install/ptz_calibration/lib/ptz_calibration/ptz_sim_demo $(DEMO_ARGS)

# pytest exit code 5 ("no tests collected") counts as a failure.
test: bootstrap
	@export ROS_DOMAIN_ID=$(TEST_DOMAIN_ID) ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; \
	$(ENV); \
	export PTZ_REQUIRE_ROS=1; \
	echo "[test] ROS_DOMAIN_ID=$$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$$ROS_AUTOMATIC_DISCOVERY_RANGE RMW_IMPLEMENTATION=$${RMW_IMPLEMENTATION:-}"; \
	rc=0; \
	python3 -m pytest $(TESTS) -p no:cacheprovider -ra \
		--timeout=$(TEST_TIMEOUT) $(if $(JUNIT),--junitxml=$(JUNIT)) $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" = 5 ]; then echo "[test] FAILED: pytest collected no tests (exit code 5)" >&2; exit 1; fi; \
	exit "$$rc"

bench: bootstrap
	@if [ ! -f bench/run_all.py ]; then echo "[bench] bench/run_all.py does not exist yet: nothing to run"; exit 0; fi; \
	export ROS_DOMAIN_ID=$(BENCH_DOMAIN_ID) ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; \
	$(ENV); \
	echo "[bench] ROS_DOMAIN_ID=$$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$$ROS_AUTOMATIC_DISCOVERY_RANGE"; \
	exec python3 bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf build install log .deps/stamps/ws-*

distclean: clean
	rm -rf .venv .deps

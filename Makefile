# ocirt: `make run` and `make test` work first on a fresh Debian machine, as root.
PYTHON      := /usr/bin/python3
VENV        := .venv
BIN         := $(VENV)/bin
APT_PACKAGES := runc busybox-static libseccomp2 gcc libc6-dev python3-venv python3-dev \
                iproute2 util-linux procps \
                podman conmon netavark aardvark-dns containernetworking-plugins iptables \
                containerd docker.io skopeo umoci tmux curl docker-registry apache2-utils crun
ID          ?= ocirt-demo
# make install: $(DESTDIR)$(PREFIX)/bin/ocirt and ocish, $(DESTDIR)$(PREFIX)/lib/ocirt
PREFIX      ?= /usr/local
DESTDIR     ?=
# what make run, make test (through tox) and make bench install and run: the same recipe
TEST_PREFIX := $(CURDIR)/build/prefix

.PHONY: all dev install uninstall test-install deps run test unit engines spec spec-runc lint \
	typecheck bundles clean fuzz

all: dev

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

# the dev virtualenv: an editable install with the test tools (unit tests, ruff, mypy, tox)
$(BIN)/.installed: setup.cfg pyproject.toml tools/launchers.py
	$(MAKE) deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --config-settings editable_mode=compat -e '.[test]'
	$(BIN)/python tools/launchers.py $(BIN) --source .
	$(BIN)/python -m compileall -q ocirt shim >/dev/null
	touch $@

dev: $(BIN)/.installed

# ocirt and ocish as commands of the system (tools/install.py says what goes where); a re-run
# with nothing changed since the last install only checks that
install: deps
	$(PYTHON) tools/install.py install --prefix '$(PREFIX)' --destdir '$(DESTDIR)'

uninstall:
	$(PYTHON) tools/install.py uninstall --prefix '$(PREFIX)' --destdir '$(DESTDIR)'

test-install:
	@$(MAKE) --no-print-directory install PREFIX='$(TEST_PREFIX)' DESTDIR=

bundles/busybox/rootfs/bin/busybox: bundles/mkrootfs
	bundles/mkrootfs bundles/busybox/rootfs

bundles: bundles/busybox/rootfs/bin/busybox

run: test-install bundles
	$(TEST_PREFIX)/bin/ocirt run --bundle bundles/busybox $(ID)

# tox.ini installs into TEST_PREFIX (make test-install) before the suites that run ocirt
test: dev
	$(BIN)/tox

# tests/shim run the installed ocish (build/prefix/bin/ocish): install it first
unit: dev test-install
	$(BIN)/pytest -q tests --ignore=tests/engines

engines: dev test-install
	$(BIN)/pytest -q tests/engines --runtime $(TEST_PREFIX)/bin/ocirt

# a long run of the config.json fuzzer (tests/test_fuzz.py) and of the schema cross-check
# (tests/test_one_validator.py: every value); FUZZ_SEED=<n> repeats one
FUZZ_EXAMPLES ?= 10000
fuzz: dev
	OCIRT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) OCIRT_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/pytest -q tests/test_fuzz.py \
		tests/test_one_validator.py

spec: dev test-install
	$(BIN)/pytest -q spec-tests --runtime $(TEST_PREFIX)/bin/ocirt

spec-runc: dev
	$(BIN)/pytest -q spec-tests --runtime /usr/sbin/runc

lint: dev
	$(BIN)/ruff check ocirt shim tests spec-tests bench tools

typecheck: dev
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .tox build bundles/*/rootfs

# ocirt vs runc vs crun, side by side (needs root; ~1 min). Quicker: make bench ARGS=--quick
# then what the exec stub (CVE-2019-5736) adds to each container process (bench/exec_stub.py),
# then ocish's images against skopeo and GNU tar (bench/images.py, ~1 min; IMAGES_ARGS=--quick)
# then ocish's containers against podman and dockerd (bench/containers.py, ~5 min;
# CONTAINERS_ARGS=--quick)
# bench-runs: all three RUNS times (3), each figure as the median over the runs with its
# min-max across runs (bench/runs.py; what README.md and bench/README.md quote; ~15 min)
.PHONY: bench bench-images bench-containers bench-runs
bench: dev test-install
	$(BIN)/python bench/compare.py $(ARGS)
	$(BIN)/python bench/exec_stub.py
	$(BIN)/python bench/images.py $(IMAGES_ARGS)
	$(BIN)/python bench/containers.py $(CONTAINERS_ARGS)

bench-runs: dev test-install
	$(BIN)/python bench/runs.py -k $(or $(RUNS),3) $(ARGS)

bench-images: dev test-install
	$(BIN)/python bench/images.py $(IMAGES_ARGS)

bench-containers: dev test-install
	$(BIN)/python bench/containers.py $(CONTAINERS_ARGS)

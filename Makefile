# berth: build, demo, test, benchmark. Every target installs what it needs (Debian packages).
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local
BUILD := build
BERTH := target/release/berth
RUNNER := target/release/runtime-tests
CHECKER := target/x86_64-unknown-linux-gnu/release/checker
RUNTIME ?= $(abspath $(BERTH))
DEB_PACKAGES := busybox-static jq hyperfine runc crun pkg-config libseccomp-dev

.PHONY: all deps vm-deps build demo test unit conformance conformance-rootless vm-test vm-test-systemd vm-rootless vm-conformance e2e bench vm-bench install clean

all: build

# apt only when something is missing, so repeated runs stay fast.
install_missing = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deps:
	@$(call install_missing,$(DEB_PACKAGES))

# apparmor ships apparmor_parser, which hack/vm-test copies into the VM (AppArmor is on in its
# kernel): the suite's apparmor tests load their profile with it. checkpolicy compiles the
# SELinux test policy for VM_SELINUX=1 boots.
vm-deps:
	@$(call install_missing,apparmor checkpolicy)

build: deps
	$(CARGO) build --release --bin berth -p berth
	$(CARGO) build --release -p runtime-tests --bin runtime-tests
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release -p runtime-tests --bin checker --target x86_64-unknown-linux-gnu

# Build a busybox bundle and run it with berth.
demo: build
	@rm -rf $(BUILD)/demo && mkdir -p $(BUILD)/demo
	hack/mkrootfs $(BUILD)/demo/rootfs
	cd $(BUILD)/demo && ../../$(BERTH) spec
	jq '.process.terminal = false | .process.args = ["sh", "-c", "echo hello from $$(hostname): $$(id); ls /; cat /proc/self/cgroup | head -3"] | .linux.cgroupsPath = "/berth-demo/demo"' \
		$(BUILD)/demo/config.json > $(BUILD)/demo/config.json.new && mv $(BUILD)/demo/config.json.new $(BUILD)/demo/config.json
	$(BERTH) --root $(abspath $(BUILD))/demo/state run --bundle $(BUILD)/demo demo-$$$$
	@rmdir /sys/fs/cgroup/*/berth-demo /sys/fs/cgroup/berth-demo 2>/dev/null || true

unit: deps
	$(CARGO) test --workspace -- --test-threads=1

# RUNTIME=runc15 is the reference runc 1.5 that hack/runc15 builds (once); its xfails are "runc15".
runtime_path = $(if $(filter runc15,$(RUNTIME)),$(shell hack/runc15),$(RUNTIME))
runtime_name = $(if $(filter runc15,$(RUNTIME)),--runtime-name runc15)

conformance: build
	$(RUNNER) --runtime $(runtime_path) $(runtime_name) --checker $(CHECKER)

# The suite with the runtime run by a user it creates (uidmap: newuidmap/newgidmap for its
# subordinate ranges); the tests that need host privileges or a writable cgroup are skipped.
conformance-rootless: build
	@$(call install_missing,uidmap)
	$(RUNNER) --runtime $(RUNTIME) --checker $(CHECKER) --rootless

# The conformance suite, then berth's own unit and integration tests (the `make unit` build),
# inside a throwaway pure cgroup v2 VM (hack/vm-test, docs/testing.md): our hosts are hybrid,
# so this is where berth's v2 cgroup code runs. qemu TCG runs user code 4-40x slower, hence
# the timeout scale. VM_FILTER=PATTERN runs a subset of the suite. RUNTIME_TESTS_CRIU=1: the
# checkpoint/ tests run there (CRIU fails on our hosts' kernel and is never run on the host).
VM_TIMEOUT_SCALE ?= 10
vm_conformance = hack/vm-test env RUNTIME_TESTS_TIMEOUT_SCALE=$(VM_TIMEOUT_SCALE) RUNTIME_TESTS_CRIU=1 \
	$(abspath $(RUNNER)) --runtime $(1) --checker $(abspath $(CHECKER)) $(if $(VM_FILTER),--filter '$(VM_FILTER)')

# Every part runs even if one fails; the target fails if any did. The VM boots with AppArmor;
# the third run boots it with SELinux for the suite's selinux/ tests only.
vm-test: build vm-deps
	status=0; \
	$(call vm_conformance,$(abspath $(BERTH))) || status=1; \
	CARGO=$(CARGO) hack/vm/cargo-tests || status=1; \
	VM_SELINUX=1 $(call vm_conformance,$(abspath $(BERTH))) --filter selinux || status=1; \
	$(MAKE) vm-rootless RUNTIME=$(abspath $(BERTH)) || status=1; \
	exit $$status

# The rootless suite in the VM with the suite's cgroup parent delegated to the user (cgroup v2
# delegation): useradd/userdel and newuidmap/newgidmap are copied in and made setuid there.
VM_ROOTLESS_BINS = $(shell command -v bash) $(abspath $(BERTH)) $(abspath $(RUNNER)) /usr/sbin/useradd /usr/sbin/userdel /usr/bin/newuidmap /usr/bin/newgidmap
vm_rootless = VM_BINS="$(VM_ROOTLESS_BINS) $(1)" hack/vm-test sh -c 'chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap && \
	touch /etc/subuid /etc/subgid && exec env RUNTIME_TESTS_TIMEOUT_SCALE=$(VM_TIMEOUT_SCALE) "$$@"' - \
	$(abspath $(RUNNER)) --runtime $(1) --checker $(abspath $(CHECKER)) --rootless --rootless-cgroup
vm-rootless: build vm-deps
	@$(call install_missing,uidmap)
	$(call vm_rootless,$(shell command -v $(RUNTIME) || echo $(RUNTIME)))

# The systemd cgroup driver, in a VM that boots Debian with systemd as init (hack/vm/systemd-tests,
# docs/testing.md): the suite with --systemd-cgroup against berth and runc 1.5, tests/systemd.rs,
# and Podman with --cgroup-manager=systemd; no unit of ours may be left.
vm-test-systemd: build
	CARGO=$(CARGO) VM_FILTER='$(VM_FILTER)' VM_TIMEOUT_SCALE=$(VM_TIMEOUT_SCALE) hack/vm/systemd-tests

# Any runtime, e.g. RUNTIME=crun: a name is looked up in PATH; host programs outside the
# repository are copied into the VM at the same path, with their libraries.
vm-conformance: build vm-deps
	$(call vm_conformance,$(shell command -v $(runtime_path) || echo $(runtime_path))) $(runtime_name)

# Podman (also rootless), containerd, Docker and containerd 2.x's CRI (critest) driving berth
# (hack/e2e/, docs/testing.md). Each script installs its client; all run even if one fails.
# E2E_CLIENTS picks a subset.
E2E_CLIENTS ?= podman podman-rootless containerd docker cri
e2e: build
	status=0; for c in $(E2E_CLIENTS); do hack/e2e/$$c $(abspath $(BERTH)) || status=1; done; exit $$status

test: build unit conformance conformance-rootless vm-test e2e

# BENCH_QUICK=1 for a smoke run; hack/bench lists its knobs.
bench: build
	hack/bench

# The same table in one boot of the pure cgroup v2 VM (build/runc/runc is on the shared repository).
vm-bench: build vm-deps
	VM_BINS="$$(command -v bash jq hyperfine crun runc) /usr/bin/time /bin/busybox $(abspath $(BERTH))" \
		hack/vm-test env BENCH_QUICK=$(BENCH_QUICK) hack/bench

# The binary, man pages (section 8) and shell completions, in the usual places under PREFIX.
install: build
	install -D -m 0755 $(BERTH) $(DESTDIR)$(PREFIX)/bin/berth
	$(BERTH) man $(DESTDIR)$(PREFIX)/share/man/man8
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(BERTH) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/berth
	$(BERTH) completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_berth
	$(BERTH) completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/berth.fish

clean:
	rm -rf $(BUILD) target

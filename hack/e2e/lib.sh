# Shared by the end-to-end scripts (hack/e2e/<client>): sourced, not run.
#
# Each script drives one container engine with berth as its OCI runtime. The engine is given
# a logging wrapper instead of berth itself, so that every command line the engine sent is
# recorded with berth's exit status; e2e_finish fails the run if berth failed on any of them
# (unless the call was expected to fail) or if any step failed.
#
# Usage in a script:
#   . "$(dirname "$0")/lib.sh"; e2e_init NAME "$@"   # NAME: the client; $1: berth's path
#   e2e_step "what it checks" CMD...                   # CMD must succeed
#   e2e_expect "what it checks" PATTERN CMD...         # CMD must succeed and print PATTERN (grep -E)
#   e2e_allow_failure REGEX                            # berth calls matching REGEX may fail
#   e2e_finish                                         # prints the summary, returns the status
# Work files live in $E2E_DIR (build/e2e/NAME): calls.log, the engine's logs, the rootfs tarball.
set -euo pipefail

e2e_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
e2e_failures=0
e2e_allowed=()
e2e_cleanups=()

e2e_log() { printf '%s e2e[%s]: %s\n' "$(date +%T)" "$E2E_NAME" "$*" >&2; }

# e2e_init NAME BERTH: work dir, the logging wrapper at $E2E_RUNTIME, and the EXIT trap.
e2e_init() {
	E2E_NAME=$1
	E2E_BERTH=$(realpath "${2:-$e2e_repo/target/release/berth}")
	[ -x "$E2E_BERTH" ] || { echo "e2e: no berth binary at $E2E_BERTH" >&2; exit 2; }
	E2E_DIR=$e2e_repo/build/e2e/$E2E_NAME
	rm -rf "$E2E_DIR"
	mkdir -p "$E2E_DIR/bin"
	E2E_CALLS=$E2E_DIR/calls.log
	: >"$E2E_CALLS"
	E2E_RUNTIME=$E2E_DIR/bin/berth
	# The wrapper leaves stdio alone: the container's own stdio is berth's (create, exec -d).
	cat >"$E2E_RUNTIME" <<WRAPPER
#!/bin/bash
"$E2E_BERTH" "\$@"
rc=\$?
printf '%s\t%s\t%s\n' "\$rc" "\$(date +%T.%N)" "\$*" >>"$E2E_CALLS"
exit \$rc
WRAPPER
	chmod 0755 "$E2E_RUNTIME"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	e2e_log "berth: $E2E_BERTH (calls logged to $E2E_CALLS)"
}

# e2e_on_exit CMD...: run CMD at exit (last registered runs first), whatever happened.
e2e_on_exit() { e2e_cleanups=("$(printf '%q ' "$@")" "${e2e_cleanups[@]}"); }

e2e_cleanup() {
	local rc=$? c
	for c in "${e2e_cleanups[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
	return $rc
}

# e2e_install PACKAGE...: Debian packages, only those missing.
e2e_install() {
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	e2e_log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# e2e_rootfs_tar: a tarball of the busybox rootfs (hack/mkrootfs) at $E2E_DIR/rootfs.tar.
e2e_rootfs_tar() {
	rm -rf "$E2E_DIR/rootfs"
	"$e2e_repo/hack/mkrootfs" "$E2E_DIR/rootfs" >/dev/null
	tar -C "$E2E_DIR/rootfs" --numeric-owner -cf "$E2E_DIR/rootfs.tar" .
	rm -rf "$E2E_DIR/rootfs"
	echo "$E2E_DIR/rootfs.tar"
}

# e2e_step DESCRIPTION CMD...: CMD must exit 0. Its output goes to the terminal.
e2e_step() {
	local what=$1; shift
	if "$@"; then
		e2e_log "ok: $what"
	else
		e2e_log "FAIL: $what (exit $?): $*"
		e2e_failures=$((e2e_failures + 1))
	fi
}

# e2e_expect DESCRIPTION PATTERN CMD...: CMD must exit 0 and print a line matching PATTERN.
e2e_expect() { e2e_output 0 "$@"; }

# e2e_expect_fail DESCRIPTION PATTERN CMD...: CMD must fail and print PATTERN (an error that
# reached the user).
e2e_expect_fail() { e2e_output 1 "$@"; }

# e2e_output FAILS DESCRIPTION PATTERN CMD...: FAILS is 1 when CMD must exit non-zero.
e2e_output() {
	local fails=$1 what=$2 pattern=$3 out rc=0; shift 3
	out=$("$@" 2>&1) || rc=$?
	printf '%s\n' "$out" | sed 's/^/    /' >&2
	if [ $((rc != 0)) = "$fails" ] && grep -Eq -- "$pattern" <<<"$out"; then
		e2e_log "ok: $what"
	else
		e2e_log "FAIL: $what (exit $rc, wanted $([ "$fails" = 1 ] && echo failure || echo success) with /$pattern/): $*"
		e2e_failures=$((e2e_failures + 1))
	fi
}

# e2e_allow_failure REGEX: berth calls whose arguments match REGEX may exit non-zero (a
# container made to fail on purpose).
e2e_allow_failure() { e2e_allowed+=("$1"); }

# e2e_wait_for SECONDS CMD...: poll CMD until it succeeds.
e2e_wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# e2e_finish: check the berth calls, print the summary; returns non-zero if anything failed.
e2e_finish() {
	local rc args line allowed a bad=0 total
	total=$(wc -l <"$E2E_CALLS")
	while IFS=$'\t' read -r rc _ args; do
		[ "$rc" = 0 ] && continue
		allowed=0
		for a in "${e2e_allowed[@]}"; do
			[[ $args =~ $a ]] && allowed=1
		done
		if [ $allowed = 1 ]; then
			e2e_log "berth exited $rc (expected): berth $args"
		else
			e2e_log "FAIL: berth exited $rc: berth $args"
			bad=$((bad + 1))
		fi
	done <"$E2E_CALLS"
	e2e_log "berth was called $total times: $(cut -f3 "$E2E_CALLS" | sed -E 's/--(debug|systemd-cgroup)( |$)//g; s/^(-[^ ]+ ([^- ][^ ]* )?)*//; s/ .*//' | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')"
	[ "$total" -gt 0 ] || { e2e_log "FAIL: the client never called berth"; bad=$((bad + 1)); }
	e2e_failures=$((e2e_failures + bad))
	if [ $e2e_failures -eq 0 ]; then
		e2e_log "PASS"
	else
		e2e_log "FAILED: $e2e_failures problem(s)"
	fi
	[ $e2e_failures -eq 0 ]
}

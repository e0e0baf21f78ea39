#!/usr/bin/env bash
# Self-check of the test environment: exercises each component for real.
#   scripts/test-env/check.sh [component...]   (none: all)
# It does not start anything (run up.sh first). Ends with "check: N passed, N failed".
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=SCRIPTDIR/components.sh
source "$TE_DIR/components.sh"

comps=("$@")
((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")
for c in "${comps[@]}"; do
	component_fn "$c" >/dev/null || {
		printf 'usage: %s [component...]\ncomponents: %s\n' "$0" "${ALL_COMPONENTS[*]}" >&2
		exit 2
	}
done

WORK="$(mktemp -d)"
CLEANUP=()
cleanup() {
	local c
	for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

passed=0 failed=0
# check NAME CMD... : runs CMD, output to a file; prints ok/FAIL and the tail.
check() {
	local name="$1" start
	shift
	start="$(now)"
	if "$@" >"$WORK/out" 2>&1; then
		passed=$((passed + 1))
		printf 'ok   %-48s %5ss  %s\n' "$name" "$(elapsed "$start")" "$(tail -n 1 "$WORK/out")"
	else
		failed=$((failed + 1))
		printf 'FAIL %-48s %5ss\n' "$name" "$(elapsed "$start")"
		sed 's/^/     | /' "$WORK/out" | tail -n 20
	fi
}

# --- docker ----------------------------------------------------------------
chk_docker_version() {
	docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}) -> engine {{.Server.Version}} (API {{.Server.APIVersion}})'
}
chk_docker_info() {
	local driver
	driver="$(docker info --format '{{.Driver}}')"
	[[ "$driver" == vfs || "$driver" == overlay2 ]] || {
		echo "storage driver is $driver, want overlay2 or vfs"
		return 1
	}
	echo "driver $driver, root $(docker info --format '{{.DockerRootDir}}')"
}
# A tiny image made from a tar (nothing to pull), for builds and pushes.
TINY="slipway-test/tiny:check-$$"
make_tiny() {
	mkdir -p "$WORK/tiny"
	printf 'slipway test-env %s\n' "$(date -Is)" >"$WORK/tiny/hello.txt"
	tar -C "$WORK/tiny" -cf - . | docker import --change 'CMD ["/hello.txt"]' - "$TINY" >/dev/null
	CLEANUP+=("docker rmi -f $TINY")
	docker image inspect --format '{{.Id}}' "$TINY"
}
chk_docker_build() {
	# The classic builder (DOCKER_BUILDKIT=0): no buildx here.
	mkdir -p "$WORK/ctx"
	printf 'FROM %s\nCOPY note.txt /note.txt\n' "$TINY" >"$WORK/ctx/Dockerfile"
	echo note >"$WORK/ctx/note.txt"
	CLEANUP+=("docker rmi -f slipway-test/tiny:built-$$")
	DOCKER_BUILDKIT=0 docker build -q -t "slipway-test/tiny:built-$$" "$WORK/ctx"
}

# --- base-image ------------------------------------------------------------
# One container (vfs copies the whole image per container: ~20 s each).
chk_base_image() {
	local out v
	out="$(docker run --rm --network host "$BASE_IMAGE" sh -c \
		'python3 -c "import sys, ssl, sqlite3; print(\"%d.%d.%d\" % sys.version_info[:3])" &&
		 python3 -m venv /tmp/v && /tmp/v/bin/pip --version')"
	printf '%s\n' "$out"
	v="$(head -n 1 <<<"$out")"
	[[ "$v" == 3.11.* ]] || {
		echo "python $v in $BASE_IMAGE, want 3.11"
		return 1
	}
	echo "$BASE_IMAGE: Python $v, venv + pip work"
}

# --- registry --------------------------------------------------------------
chk_registry_open() {
	local ref="127.0.0.1:$REGISTRY_PORT/slipway-check/tiny:$RANDOM"
	docker tag "$TINY" "$ref"
	CLEANUP+=("docker rmi -f $ref")
	docker push -q "$ref" >/dev/null 2>&1 || docker push "$ref"
	docker rmi "$ref" >/dev/null
	docker pull -q "$ref" >/dev/null
	docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | grep -F "127.0.0.1:$REGISTRY_PORT/"
}
chk_registry_auth() {
	local ref="127.0.0.1:$AUTH_REGISTRY_PORT/slipway-check/tiny:$RANDOM"
	# Its own client config, so the user's ~/.docker is left alone.
	local -x DOCKER_CONFIG="$WORK/docker-config"
	mkdir -p "$DOCKER_CONFIG"
	docker tag "$TINY" "$ref"
	CLEANUP+=("docker rmi -f $ref")
	if docker push "$ref" >/dev/null 2>&1; then
		echo "push without login succeeded; auth is not enforced"
		return 1
	fi
	docker login -u "$REGISTRY_USER" --password-stdin "127.0.0.1:$AUTH_REGISTRY_PORT" \
		<"$REGISTRY_PASSWORD_FILE" >/dev/null
	docker push "$ref" >/dev/null
	docker rmi "$ref" >/dev/null
	docker pull -q "$ref" >/dev/null
	docker logout "127.0.0.1:$AUTH_REGISTRY_PORT" >/dev/null
	printf 'unauthenticated push refused; with login: %s\n' \
		"$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | grep -F "127.0.0.1:$AUTH_REGISTRY_PORT/")"
}
chk_registry_password_mode() {
	local mode
	mode="$(stat -c %a "$REGISTRY_PASSWORD_FILE")"
	[[ "$mode" == 600 ]] || {
		echo "$REGISTRY_PASSWORD_FILE has mode $mode"
		return 1
	}
	echo "$REGISTRY_PASSWORD_FILE mode 600"
}

# --- sshd ------------------------------------------------------------------
chk_sshd_docker() {
	ssh -i "$SSH_DIR/user_key" -o UserKnownHostsFile="$SSH_DIR/known_hosts" \
		-o StrictHostKeyChecking=yes -o BatchMode=yes -p "$SSH_PORT" root@127.0.0.1 \
		docker info --format "'engine {{.ServerVersion}} driver {{.Driver}} over ssh'"
}
chk_sshd_password_refused() {
	# Only keys: a login offering no key must fail.
	if ssh -F none -o PubkeyAuthentication=no -o BatchMode=yes \
		-o UserKnownHostsFile="$SSH_DIR/known_hosts" -p "$SSH_PORT" root@127.0.0.1 true 2>"$WORK/err"; then
		echo "login without a key succeeded"
		return 1
	fi
	tail -n 1 "$WORK/err"
}

# --- host2 -----------------------------------------------------------------
chk_host2_separate() {
	# Its own engine (not the main one), its own address, its own files.
	local main_id h2
	main_id="$(docker info --format '{{.ID}}')"
	h2="$(ssh_host2 'docker info --format "{{.ID}} {{.DockerRootDir}}"; ip -4 -o addr show dev eth0; test ! -e /var/lib/slipway-test && echo own-var-lib')"
	[[ "$h2" != *"$main_id"* && "$h2" == *"$H2_ADDR/30"* && "$h2" == *own-var-lib* ]] || {
		echo "host2 is not separate: $h2"
		return 1
	}
	echo "engine $(head -n 1 <<<"$h2" | cut -c1-14)… at /var/lib/docker, $H2_ADDR, own /var/lib"
}
chk_host2_no_registry() {
	# Its loopback is its own: the registry on this host's 127.0.0.1 is out of reach.
	if ssh_host2 docker pull "127.0.0.1:$REGISTRY_PORT/slipway-test/none:x" >"$WORK/h2pull" 2>&1; then
		echo "host2 reached 127.0.0.1:$REGISTRY_PORT"
		return 1
	fi
	grep -o 'connection refused' "$WORK/h2pull" | head -n 1
}
chk_host2_stream() {
	# What the deploy's image-transfer: stream does: docker save here, docker load there.
	docker save "$TINY" | ssh_host2 docker load --quiet
	CLEANUP+=("ssh_host2 docker rmi -f $TINY")
}

# --- haproxy, load, tools --------------------------------------------------
chk_haproxy() {
	cat >"$WORK/haproxy.cfg" <<EOF
global
  stats socket $WORK/haproxy.sock mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:18090
  default_backend be
backend be
  server a 127.0.0.1:1 disabled
EOF
	haproxy -c -f "$WORK/haproxy.cfg" >/dev/null
	haproxy -v >"$WORK/haproxy.version"
	head -n 1 "$WORK/haproxy.version"
}
chk_haproxy_not_running() {
	if pgrep -x haproxy -a | grep -q /etc/haproxy/haproxy.cfg; then
		echo "the system haproxy service is running"
		return 1
	fi
	echo "no system haproxy service running"
}
chk_wrk() {
	# A bounded 1-second run against a throwaway server on a free loopback port.
	local port pid
	python3 -u -m http.server --bind 127.0.0.1 0 --directory "$WORK" >"$WORK/http.log" 2>&1 &
	pid=$!
	CLEANUP+=("kill $pid")
	wait_for 10 "http.server" grep -q ' port ' "$WORK/http.log"
	port="$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$WORK/http.log" | head -n 1)"
	wrk -t1 -c2 -d1s "http://127.0.0.1:$port/" >"$WORK/wrk.out"
	kill "$pid"
	grep -E 'Requests/sec' "$WORK/wrk.out"
}
chk_actionlint() {
	"$TOOLS_VENV/bin/actionlint" --version >"$WORK/al.version"
	head -n 1 "$WORK/al.version"
}
chk_act() { "$TOOLS_VENV/bin/act" --version; }

for c in "${comps[@]}"; do
	case "$c" in
	docker)
		check "docker: client talks to engine" chk_docker_version
		check "docker: info (driver)" chk_docker_info
		check "docker: import a tiny image" make_tiny
		check "docker: classic build (DOCKER_BUILDKIT=0)" chk_docker_build
		;;
	base-image)
		check "base-image: python 3.11, venv, pip" chk_base_image
		;;
	registry)
		docker image inspect "$TINY" >/dev/null 2>&1 || check "docker: import a tiny image" make_tiny
		check "registry: push/pull 127.0.0.1:$REGISTRY_PORT" chk_registry_open
		check "registry: auth on 127.0.0.1:$AUTH_REGISTRY_PORT" chk_registry_auth
		check "registry: password file mode" chk_registry_password_mode
		;;
	sshd)
		check "sshd: docker info over ssh" chk_sshd_docker
		check "sshd: no login without key" chk_sshd_password_refused
		;;
	haproxy)
		check "haproxy: binary + config check" chk_haproxy
		check "haproxy: system service not started" chk_haproxy_not_running
		;;
	load) check "load: wrk 1 s on loopback" chk_wrk ;;
	host2)
		docker image inspect "$TINY" >/dev/null 2>&1 || check "docker: import a tiny image" make_tiny
		check "host2: own engine, address, files" chk_host2_separate
		check "host2: registry unreachable" chk_host2_no_registry
		check "host2: docker save | ssh docker load" chk_host2_stream
		;;
	tools)
		check "tools: actionlint" chk_actionlint
		check "tools: act" chk_act
		;;
	esac
done

printf 'check: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))

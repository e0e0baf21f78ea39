#!/usr/bin/env bash
# The second "host" (component host2, see components.sh): runs INSIDE its network namespace
# and a fresh, private mount namespace, started by host2_up as
#   nsenter --net=/run/netns/<ns> unshare --mount --propagation private bash host2-init.sh DIR DRIVER
# It gives the host its own /run, /tmp, /root, /etc/ssh, /etc/docker and /var/lib (dirs under DIR),
# so paths a deploy uses (remote-dir, /var/run/docker.sock, ~/.docker) are this host's own and
# nothing of the main host's state is touched; then it starts this host's dockerd (default
# paths, seen from inside) and ends as its sshd (-D, logging to stderr: the host2 log).
# Do not run it by hand.
set -euo pipefail
# The caller talks to the main engine; this host's docker CLI must find its own.
unset DOCKER_HOST
dir="$1" driver="$2"
[[ -d "$dir/var/lib" && -d "$dir/etc/ssh" ]] || {
	echo "host2-init: $dir is not a host2 root" >&2
	exit 1
}
# unshare --propagation private made every mount private: nothing below leaks out.
# /var/lib goes last: it hides $dir itself (which lives under /var/lib).
# /etc/docker holds the engine's identity (key.json) and daemon.json: this host's own too.
mkdir -p /etc/docker
for d in run tmp root etc/ssh etc/docker var/lib; do
	mount --bind "$dir/$d" "/$d"
done
mkdir -p /run/sshd
chmod 0755 /run/sshd

printf '=== %s host2: starting dockerd (%s) ===\n' "$(date -Is)" "$driver"
# The same flags as the main engine (components.sh docker_up), on this host's default paths.
dockerd --host unix:///var/run/docker.sock \
	--data-root /var/lib/docker \
	--exec-root /var/run/docker \
	--pidfile /var/run/docker.pid \
	--iptables=false --ip6tables=false --bridge=none \
	--storage-driver="$driver" </dev/null &
for ((i = 0; i < 300; i++)); do
	[[ -S /var/run/docker.sock ]] && docker info >/dev/null 2>&1 && break
	kill -0 $! 2>/dev/null || {
		echo "host2-init: dockerd exited" >&2
		exit 1
	}
	sleep 0.2
done
printf '=== %s host2: starting sshd ===\n' "$(date -Is)"
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config

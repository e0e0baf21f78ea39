#!/usr/bin/env bash
# Print the test environment as KEY=VALUE lines (one per line, unquoted, for
# Node's test setup or $GITHUB_ENV). Needs nothing to be up; does no work.
#   scripts/test-env/env.sh            KEY=VALUE
#   eval "$(scripts/test-env/env.sh --export)"   shell-quoted export lines
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tools_bin="$TOOLS_VENV/bin"
path="$PATH"
case ":$path:" in
*":$tools_bin:"*) ;;
*) path="$tools_bin:$path" ;;
esac

vars=(
	DOCKER_HOST "unix://$DOCKER_SOCK"
	DOCKER_BUILDKIT 0
	SLIPWAY_TEST_BASE_IMAGE "$BASE_IMAGE"
	SLIPWAY_TEST_SSH_HOST 127.0.0.1
	SLIPWAY_TEST_SSH_PORT "$SSH_PORT"
	SLIPWAY_TEST_SSH_USER root
	SLIPWAY_TEST_SSH_KEY "$SSH_DIR/user_key"
	SLIPWAY_TEST_SSH_KNOWN_HOSTS "$SSH_DIR/known_hosts"
	SLIPWAY_TEST_SSH_CONFIG "$SSH_DIR/ssh_config"
	SLIPWAY_TEST_REGISTRY "127.0.0.1:$REGISTRY_PORT"
	SLIPWAY_TEST_AUTH_REGISTRY "127.0.0.1:$AUTH_REGISTRY_PORT"
	SLIPWAY_TEST_REGISTRY_USER "$REGISTRY_USER"
	SLIPWAY_TEST_REGISTRY_PASSWORD_FILE "$REGISTRY_PASSWORD_FILE"
	SLIPWAY_TEST_TOOLS_BIN "$tools_bin"
	SLIPWAY_TEST_HOST2 "$H2_ADDR"
	SLIPWAY_TEST_HOST2_KNOWN_HOSTS "$H2_DIR/known_hosts"
	SLIPWAY_TEST_HOST2_NETNS "$H2_NS"
	SLIPWAY_TEST_HOST2_ROOT "$H2_DIR"
	SLIPWAY_TEST_HOST2_DOCKER_HOST "unix://$H2_DIR/run/docker.sock"
	SLIPWAY_TEST_HOST_CA_BUNDLE "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
	PATH "$path"
)

for ((i = 0; i < ${#vars[@]}; i += 2)); do
	if [[ "${1:-}" == --export ]]; then
		printf 'export %s=%q\n' "${vars[i]}" "${vars[i + 1]}"
	else
		printf '%s=%s\n' "${vars[i]}" "${vars[i + 1]}"
	fi
done

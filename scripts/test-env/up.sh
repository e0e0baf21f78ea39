#!/usr/bin/env bash
# Install (if missing) and start what Slipway's integration tests need.
#   scripts/test-env/up.sh <component>...    components: docker base-image
#   registry sshd haproxy load tools host2, or "all". Idempotent; fast when up.
# `tools` prints the venv's bin dir on stdout; everything else logs to stderr.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=SCRIPTDIR/components.sh
source "$TE_DIR/components.sh"

usage() {
	printf 'usage: %s <component>... | all\ncomponents: %s\n' "$0" "${ALL_COMPONENTS[*]}" >&2
	exit 2
}
(($#)) || usage

declare -A want=()
for arg in "$@"; do
	case "$arg" in
	-h | --help) usage ;;
	all) for c in "${ALL_COMPONENTS[@]}"; do want[$c]=1; done ;;
	*) component_fn "$arg" >/dev/null || usage; want[$arg]=1 ;;
	esac
done
# base-image lives in the engine.
[[ -n "${want[base-image]:-}" ]] && want[docker]=1

with_lock
total_start="$(now)"
for c in "${ALL_COMPONENTS[@]}"; do
	[[ -n "${want[$c]:-}" ]] || continue
	start="$(now)"
	"$(component_fn "$c")_up"
	log "$c: up ($(elapsed "$start") s)"
done
((${#want[@]} > 1)) && log "all requested components up ($(elapsed "$total_start") s)"
exit 0

#!/usr/bin/env bash
# Stop what up.sh started (by pidfile). Caches, images, keys and registry
# storage stay in place, so the next up.sh is fast.
#   scripts/test-env/down.sh [component...]   (none: all)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=SCRIPTDIR/components.sh
source "$TE_DIR/components.sh"

declare -A want=()
if (($#)); then
	for arg in "$@"; do
		if [[ "$arg" == all ]]; then
			for c in "${ALL_COMPONENTS[@]}"; do want[$c]=1; done
		else
			component_fn "$arg" >/dev/null || {
				printf 'usage: %s [component...]\ncomponents: %s\n' "$0" "${ALL_COMPONENTS[*]}" >&2
				exit 2
			}
			want[$arg]=1
		fi
	done
else
	for c in "${ALL_COMPONENTS[@]}"; do want[$c]=1; done
fi

with_lock
# Reverse order: the engine goes last.
for ((i = ${#ALL_COMPONENTS[@]} - 1; i >= 0; i--)); do
	c="${ALL_COMPONENTS[i]}"
	[[ -n "${want[$c]:-}" ]] || continue
	"$(component_fn "$c")_down"
done

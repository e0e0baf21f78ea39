#!/usr/bin/env bash
# actionlint over every workflow we ship and every action.yml. actionlint reads an action.yml
# when a workflow uses it as a local action, checking the metadata and every input passed, so a
# generated workflow uses each action with all of its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-env/up.sh tools >/dev/null
actionlint=.tools/venv/bin/actionlint

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/.github/workflows"
node -e '
  const fs = require("fs"), path = require("path"), yaml = require("yaml");
  const dirs = fs.readdirSync("actions").filter((d) => fs.existsSync(`actions/${d}/action.yml`)).map((d) => `actions/${d}`);
  dirs.push(".");
  const steps = dirs.map((dir) => {
    const meta = yaml.parse(fs.readFileSync(path.join(dir, "action.yml"), "utf8"));
    const w = Object.fromEntries(Object.keys(meta.inputs ?? {}).map((k) => [k, "x"]));
    return { uses: dir === "." ? "./" : `./${dir}`, with: w };
  });
  const wf = { name: "probe", on: "push", permissions: {}, jobs: { probe: { "runs-on": "ubuntu-latest", steps } } };
  fs.writeFileSync(process.argv[1], yaml.stringify(wf));
' "$probe/.github/workflows/probe.yml"
# actionlint resolves local actions from the repository root it finds by .git, and checks
# that runs.main/post exist: the probe is a repository that sees our actions and dist/.
git init -q "$probe"
for d in actions action.yml dist; do ln -s "$PWD/$d" "$probe/$d"; done
# Self-check: the probe must be able to fail (an input no action declares).
cat >"$probe/canary.yml" <<'YML'
name: canary
on: push
permissions: {}
jobs:
  canary:
    runs-on: ubuntu-latest
    steps:
      - uses: ./actions/setup-django
        with:
          no-such-input: x
YML
if (cd "$probe" && mv canary.yml .github/workflows/canary.yml && "$OLDPWD/$actionlint" .github/workflows/canary.yml >/dev/null); then
  echo "actionlint probe self-check failed: an undeclared input was not reported" >&2
  exit 1
fi
rm "$probe/.github/workflows/canary.yml"

files=()
while IFS= read -r f; do files+=("$f"); done < <(ls .github/workflows/*.yml workflow-templates/*.yml 2>/dev/null || true)
"$actionlint" "${files[@]}"
(cd "$probe" && "$OLDPWD/$actionlint" .github/workflows/probe.yml)
echo "actionlint: ${#files[@]} workflow files and $(ls -d actions/*/ | wc -l) + 1 action.yml files clean"

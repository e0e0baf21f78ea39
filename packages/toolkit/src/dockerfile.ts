import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

/**
 * A production Dockerfile for a Django project that has none, and a .dockerignore to go with
 * it. Two stages: `builder` makes /opt/venv from the lockfile alone (its own cached layer, so a
 * code-only change rebuilds only the last layers), the final stage copies the venv onto a
 * fresh slim base, then the code, collects static files with a throwaway key, and runs
 * gunicorn as a non-root user. Package-index settings arrive as build secrets (`index-env`, `index-ca`)
 * that never land in a layer.
 */

export type PackageManager = 'pip' | 'uv' | 'poetry' | 'pipenv' | 'pyproject';

export interface DjangoProjectPlan {
  pythonVersion: string;
  manager: PackageManager;
  /** Files the dependency layer needs, relative to the context. */
  dependencyFiles: string[];
  /** manage.py's folder relative to the context ('' at the root). */
  projectDir: string;
  settingsModule: string;
  /** `pkg.wsgi:application` or `pkg.asgi:application`. */
  application: string;
  asgi: boolean;
  /** gunicorn worker class for ASGI projects. */
  workerClass?: string;
  /** Dependencies lack gunicorn: install it on its own (with a warning). */
  addGunicorn: boolean;
  /** uv / poetry extras that bring gunicorn. */
  extras: string[];
  healthPath: string;
}

export const SECRET_IDS = { env: 'index-env', ca: 'index-ca' } as const;
export const UV_VERSION = '0.9.30';
export const POETRY_VERSION = '2.1.4';
export const PIPENV_VERSION = '2025.0.4';

const REQUIREMENTS_CANDIDATES = ['requirements.txt', 'requirements/production.txt', 'requirements/prod.txt', 'requirements/base.txt'];

function readIf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Decides how to build the project in `contextDir` whose manage.py is at `managePy`. */
export function planDjangoImage(opts: {
  contextDir: string;
  managePy: string;
  settingsModule: string;
  pythonVersion: string;
  healthPath: string;
}): DjangoProjectPlan {
  const { contextDir } = opts;
  const projectAbs = path.dirname(opts.managePy);
  const projectDir = path.relative(contextDir, projectAbs).split(path.sep).join('/');
  if (projectDir.startsWith('..')) {
    throw new UserError(`manage.py (${opts.managePy}) is outside the build \`context\` (${contextDir}): widen \`context\`.`);
  }
  // The dependency files may sit beside manage.py or at the context root.
  const dirs = [...new Set([projectDir, ''])];
  const find = (name: string): string | undefined =>
    dirs.map((d) => (d ? `${d}/${name}` : name)).find((f) => fs.existsSync(path.join(contextDir, f)));
  let manager: PackageManager;
  let dependencyFiles: string[];
  const uvLock = find('uv.lock');
  const poetryLock = find('poetry.lock');
  const pipfileLock = find('Pipfile.lock');
  const requirements = REQUIREMENTS_CANDIDATES.map(find).find(Boolean);
  if (uvLock) {
    manager = 'uv';
    dependencyFiles = [sibling(uvLock, 'pyproject.toml'), uvLock];
  } else if (poetryLock) {
    manager = 'poetry';
    dependencyFiles = [sibling(poetryLock, 'pyproject.toml'), poetryLock];
  } else if (pipfileLock) {
    manager = 'pipenv';
    dependencyFiles = [sibling(pipfileLock, 'Pipfile'), pipfileLock];
  } else if (requirements) {
    manager = 'pip';
    dependencyFiles = requirementsClosure(contextDir, requirements);
  } else if (find('pyproject.toml')) {
    manager = 'pyproject';
    dependencyFiles = [find('pyproject.toml')!];
  } else {
    throw new UserError(
      'No dependency file found (uv.lock, poetry.lock, Pipfile.lock, requirements.txt or pyproject.toml) to generate a Dockerfile from: add one, or pass your own `dockerfile`.',
    );
  }
  for (const f of dependencyFiles) {
    if (!fs.existsSync(path.join(contextDir, f))) throw new UserError(`${f} is missing next to ${dependencyFiles.at(-1)}.`);
  }
  const deps = dependencyFiles
    .map((f) => readIf(path.join(contextDir, f)))
    .join('\n')
    .toLowerCase();
  const has = (pkg: string): boolean => new RegExp(`(^|[^a-z0-9_-])${pkg}([^a-z0-9_-]|$)`, 'm').test(deps);

  const pkg = opts.settingsModule.split('.')[0]!;
  const wsgiFile = path.join(projectAbs, pkg, 'wsgi.py');
  const asgiFile = path.join(projectAbs, pkg, 'asgi.py');
  const asgiServer = has('uvicorn') || has('uvicorn-worker');
  const asgi = asgiServer && fs.existsSync(asgiFile);
  if (!asgi && !fs.existsSync(wsgiFile)) {
    throw new UserError(
      `No ${pkg}/wsgi.py next to the settings package \`${opts.settingsModule}\`: the generated image serves it with gunicorn.`,
    );
  }
  const extras: string[] = [];
  let addGunicorn = !has('gunicorn');
  if (manager === 'uv' || manager === 'poetry') {
    const pyproject = readIf(path.join(contextDir, dependencyFiles[0]!));
    const extra = extraProviding(pyproject, 'gunicorn');
    const mainDeps = /\[project\][\s\S]*?dependencies\s*=\s*\[([\s\S]*?)\]/.exec(pyproject)?.[1] ?? '';
    const poetryDeps = /\[tool\.poetry\.dependencies\]([\s\S]*?)(\n\[|$)/.exec(pyproject)?.[1] ?? '';
    if (!/gunicorn/i.test(mainDeps + poetryDeps)) {
      if (extra) extras.push(extra);
      else addGunicorn = true;
    }
  }
  return {
    pythonVersion: opts.pythonVersion,
    manager,
    dependencyFiles,
    projectDir,
    settingsModule: opts.settingsModule,
    application: `${pkg}.${asgi ? 'asgi' : 'wsgi'}:application`,
    asgi,
    workerClass: asgi ? (has('uvicorn-worker') ? 'uvicorn_worker.UvicornWorker' : 'uvicorn.workers.UvicornWorker') : undefined,
    addGunicorn,
    extras,
    healthPath: opts.healthPath,
  };
}

function sibling(file: string, name: string): string {
  const dir = path.posix.dirname(file);
  return dir === '.' ? name : `${dir}/${name}`;
}

/** A requirements file and the files it includes with -r / -c, relative to the context. */
function requirementsClosure(contextDir: string, first: string): string[] {
  const seen = new Set<string>();
  const visit = (rel: string): void => {
    if (seen.has(rel)) return;
    seen.add(rel);
    for (const line of readIf(path.join(contextDir, rel)).split('\n')) {
      const m = /^\s*(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)/.exec(line);
      if (m && !/^[a-z]+:\/\//.test(m[1]!)) visit(path.posix.normalize(path.posix.join(path.posix.dirname(rel), m[1]!)));
    }
  };
  visit(first);
  return [...seen];
}

/** The [project.optional-dependencies] (or poetry extras) group that lists `pkg`. */
function extraProviding(pyproject: string, pkg: string): string | undefined {
  const section = /\[project\.optional-dependencies\]([\s\S]*?)(\n\[|$)/.exec(pyproject)?.[1] ?? '';
  for (const m of section.matchAll(/^\s*([A-Za-z0-9_.-]+)\s*=\s*\[([\s\S]*?)\]/gm)) {
    if (new RegExp(`["']${pkg}`, 'i').test(m[2]!)) return m[1];
  }
  return undefined;
}

const SECRETS_MOUNT = `--mount=type=secret,id=${SECRET_IDS.env} --mount=type=secret,id=${SECRET_IDS.ca}`;
// Index settings (URLs, credentials, CA) as exported variables, present only during this RUN.
const LOAD_INDEX = `if [ -f /run/secrets/${SECRET_IDS.env} ]; then . /run/secrets/${SECRET_IDS.env}; fi`;
// Translation sources: Django reads only the compiled .mo catalogs next to them.
const DROP_PO = "find /opt/venv -name '*.po' -delete";

/**
 * The dependency layer. /opt/venv has no pip of its own: the base image's pip installs into it
 * (PIP_PYTHON), and uv, poetry and pipenv run from throwaway venvs removed in the same RUN, so
 * the venv holds the project's dependencies and nothing that only built them.
 */
function installSteps(plan: DjangoProjectPlan): string[] {
  const copy = `COPY ${plan.dependencyFiles.join(' ')} ./`;
  const folder = (f: string): string => (path.posix.dirname(f) === '.' ? '' : `${path.posix.dirname(f)}/`);
  const run = (...cmds: string[]): string => `RUN ${SECRETS_MOUNT} \\\n    ${[LOAD_INDEX, ...cmds, DROP_PO].join(' \\\n && ')}`;
  // A tool in its own venv, installed by the base image's pip (no ensurepip).
  const tool = (dir: string, pkgs: string): string =>
    `python -m venv --without-pip ${dir} && pip --python ${dir}/bin/python install ${pkgs}`;
  const gunicorn = plan.addGunicorn ? [`pip install gunicorn${plan.asgi ? ' uvicorn-worker' : ''}`] : [];
  const flat = (f: string): string => path.posix.basename(f);
  const lines: string[] = [];
  const deps = plan.dependencyFiles;
  if (plan.manager === 'pip') {
    // Keep the folder layout so -r includes resolve.
    for (const f of deps) lines.push(`COPY ${f} ./${folder(f)}`);
    lines.push(run(`pip install -r ${deps[0]!}`, ...gunicorn));
    return lines;
  }
  lines.push(copy);
  if (plan.manager === 'uv') {
    const extras = plan.extras.map((e) => ` --extra ${e}`).join('');
    lines.push(
      run(
        tool('/opt/uv', `uv==${UV_VERSION}`),
        `UV_PROJECT_ENVIRONMENT=/opt/venv /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --no-editable${extras} --python /opt/venv/bin/python`,
        ...gunicorn,
        'rm -rf /opt/uv',
      ),
    );
  } else if (plan.manager === 'poetry') {
    const extras = plan.extras.map((e) => ` --extras ${e}`).join('');
    lines.push(
      run(
        tool('/opt/poetry', `poetry==${POETRY_VERSION} poetry-plugin-export`),
        `/opt/poetry/bin/poetry export --only main${extras} --format requirements.txt --output /tmp/requirements.txt`,
        'pip install --no-deps -r /tmp/requirements.txt',
        ...gunicorn,
        'rm -rf /opt/poetry /tmp/requirements.txt',
      ),
    );
  } else if (plan.manager === 'pipenv') {
    lines.push(
      run(
        tool('/opt/pipenv', `pipenv==${PIPENV_VERSION}`),
        '/opt/pipenv/bin/pipenv requirements > /tmp/requirements.txt',
        'pip install -r /tmp/requirements.txt',
        ...gunicorn,
        'rm -rf /opt/pipenv /tmp/requirements.txt',
      ),
    );
  } else {
    lines.push(
      run(
        `python -c "import tomllib; print(chr(10).join(tomllib.load(open('${flat(deps[0]!)}', 'rb'))['project'].get('dependencies', [])))" > /tmp/requirements.txt`,
        'pip install -r /tmp/requirements.txt',
        ...gunicorn,
        'rm /tmp/requirements.txt',
      ),
    );
  }
  return lines;
}

/**
 * The Dockerfile text for `plan`. The builder stage makes /opt/venv from the dependency files
 * alone (build-only tools and packages stay there); the final stage takes the venv, then its
 * metadata, then the code and its static files last, so a code-only change re-runs only
 * the last steps: with the classic builder every instruction after a miss costs a container,
 * and a COPY --from re-reads its whole source to check the cache.
 */
export function renderDockerfile(plan: DjangoProjectPlan): string {
  const workdir = plan.projectDir ? `/app/${plan.projectDir}` : '/app';
  const gunicornArgs = ['gunicorn', plan.application, '--access-logfile', '-'];
  if (plan.workerClass) gunicornArgs.push('--worker-class', plan.workerClass);
  const health = JSON.stringify(plan.healthPath);
  // Alive means "answers with anything below 500": a redirect to https or a 400 for a Host
  // header outside ALLOWED_HOSTS still proves the server runs.
  const probe =
    `import os, sys, urllib.request, urllib.error\\n` +
    `class NoRedirect(urllib.request.HTTPRedirectHandler):\\n    def redirect_request(self, *a): return None\\n` +
    `try:\\n    urllib.request.build_opener(NoRedirect).open('http://127.0.0.1:%s%s' % (os.environ.get('PORT', '8000'), ${health.replace(/"/g, "'")}), timeout=4)\\n` +
    `except urllib.error.HTTPError as e:\\n    sys.exit(e.code >= 500)\\n`;
  return `# Generated by Slipway build-image for a Django project (${plan.manager}). Commit it and edit freely:
# build-image uses a Dockerfile that exists as it is.
# Index settings (PIP_INDEX_URL, UV_INDEX_URL, pip.conf credentials, a CA bundle) arrive as build
# secrets ${SECRET_IDS.env} and ${SECRET_IDS.ca}, mounted for one RUN only: they never reach a layer.
ARG PYTHON_VERSION=${plan.pythonVersion}

# Dependencies in /opt/venv. Packages needed only to build wheels (compilers, headers) go here:
# the final stage takes the venv alone.
FROM python:\${PYTHON_VERSION}-slim AS builder
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_PYTHON=/opt/venv/bin/python \\
    UV_PYTHON_DOWNLOADS=never \\
    UV_LINK_MODE=copy \\
    VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:$PATH
# No pip inside the venv: the base image's pip installs into it (PIP_PYTHON).
RUN python -m venv --without-pip /opt/venv
WORKDIR /src
# From the dependency files alone: this layer is reused until they change.
${installSteps(plan).join('\n')}

FROM python:\${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:$PATH \\
    PIP_PYTHON=/opt/venv/bin/python \\
    DJANGO_SETTINGS_MODULE=${plan.settingsModule} \\
    PORT=8000 \\
    WEB_CONCURRENCY=2
RUN groupadd --gid 10001 app \\
 && useradd --uid 10001 --gid app --no-log-init --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR ${workdir}
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\
  CMD ["python", "-c", "${probe}"]
# gunicorn binds 0.0.0.0:$PORT and starts $WEB_CONCURRENCY workers (both read from the environment).
CMD ${JSON.stringify(gunicornArgs)}
# The code last, owned by root and read-only for the app user.
COPY . /app/
# Static files at build time, when the project uses django.contrib.staticfiles ("Unknown command"
# otherwise). The key exists for this command only: it is not in the image's environment.
RUN out=$(DJANGO_SECRET_KEY=collectstatic-build-only SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput 2>&1); s=$?; \\
    printf '%s\\n' "$out"; \\
    if [ $s -ne 0 ] && printf '%s' "$out" | grep -q "Unknown command: 'collectstatic'"; then \\
      echo "django.contrib.staticfiles is not installed: no collectstatic"; \\
    else exit $s; fi
USER app
`;
}

/** Labels as one instruction (the classic builder runs a container for each --label). */
export function labelInstruction(labels: Record<string, string>): string {
  return `LABEL ${Object.entries(labels)
    .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
    .join(' ')}`;
}

export const DOCKERIGNORE = `# Generated by Slipway build-image: keep secrets, history and local state out of the image.
.git
.github
.gitignore
.dockerignore
**/__pycache__
**/*.py[cod]
.venv
venv
env
.env
.env.*
!.env.example
*.sqlite3
**/db.sqlite3
staticfiles
media
node_modules
.pytest_cache
.mypy_cache
.ruff_cache
.tox
.nox
.coverage
htmlcov
*.pem
*.key
id_rsa*
id_ed25519*
.slipway*
`;

/**
 * For the classic builder, which has no `RUN --mount=type=secret`: each secret mount is removed
 * and the RUN first fetches the secret from `fetchBase` (a one-shot server on the runner's
 * loopback, see the action's docs), runs the original command, and deletes the files in the
 * same RUN whatever happened, so they never reach a layer. Other `--mount` kinds are refused.
 */
export function rewriteSecretMounts(dockerfile: string, fetchBase: string): { text: string; ids: string[] } {
  const ids = new Set<string>();
  const lines = dockerfile.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let logical = lines[i]!;
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) logical = logical.replace(/\\\s*$/, '') + lines[++i]!;
    if (!/^\s*RUN\s/i.test(logical) || !/--mount=/.test(logical)) {
      out.push(...lines.slice(start, i + 1));
      continue;
    }
    const mounts: { id: string; target: string }[] = [];
    let rest = logical.replace(/^\s*RUN\s+/i, '');
    for (let m = /^\s*--mount=(\S+)\s*/.exec(rest); m; m = /^\s*--mount=(\S+)\s*/.exec(rest)) {
      const opts = Object.fromEntries(m[1]!.split(',').map((kv) => [kv.split('=')[0]!, kv.split('=').slice(1).join('=')]));
      if (opts.type !== 'secret') {
        throw new UserError(
          `The Dockerfile uses RUN --mount=type=${opts.type ?? 'bind'}, which needs BuildKit (docker buildx); this engine has only the classic builder.`,
        );
      }
      const target = opts.target || opts.dst || `/run/secrets/${opts.id}`;
      const id = opts.id || path.posix.basename(target);
      mounts.push({ id, target });
      ids.add(id);
      rest = rest.slice(m[0].length);
    }
    if (/^\s*\[/.test(rest)) {
      throw new UserError('The Dockerfile has an exec-form RUN with a secret mount, which the classic builder cannot run.');
    }
    out.push(
      `RUN ${secretFetchCommand(mounts, fetchBase)} \\`,
      ` && { ${rest.trim()}; }; s=$?; rm -rf ${[...new Set(mounts.map((m) => m.target))].join(' ')}; exit $s`,
    );
  }
  return { text: out.join('\n'), ids: [...ids] };
}

/**
 * A python3 command that writes each secret (0400) from `${fetchBase}/<id>`; a 404 means the
 * secret was not given (as BuildKit leaves an optional secret unmounted). Base64 keeps the
 * script free of shell and Dockerfile quoting, and its text stable, so the layer cache holds.
 */
function secretFetchCommand(mounts: { id: string; target: string }[], fetchBase: string): string {
  const script = [
    'import os, urllib.request, urllib.error',
    `for i, t in ${JSON.stringify(mounts.map((m) => [m.id, m.target]))}:`,
    '    try:',
    `        d = urllib.request.urlopen(${JSON.stringify(fetchBase)} + "/" + i, timeout=30).read()`,
    '    except urllib.error.HTTPError as e:',
    '        if e.code == 404:',
    '            continue',
    '        raise',
    '    os.makedirs(os.path.dirname(t), exist_ok=True)',
    '    f = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)',
    '    os.write(f, d)',
    '    os.close(f)',
  ].join('\n');
  return `python3 -c 'import base64; exec(base64.b64decode("${Buffer.from(script).toString('base64')}"))'`;
}

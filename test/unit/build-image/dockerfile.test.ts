import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { labelInstruction, planDjangoImage, renderDockerfile, rewriteSecretMounts } from '@slipway/toolkit/dockerfile';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const fixture = (p: string): string => path.join(ROOT, p);

function plan(dir: string, managePy = 'manage.py', settings = 'mysite.settings') {
  return planDjangoImage({
    contextDir: fixture(dir),
    managePy: path.join(fixture(dir), managePy),
    settingsModule: settings,
    pythonVersion: '3.11',
    healthPath: '/healthz',
  });
}

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bi-'));
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), text);
  }
  return root;
}

describe('planDjangoImage', () => {
  it.each([
    [
      'example',
      'manage.py',
      'shop.settings',
      {
        manager: 'pip',
        dependencyFiles: ['requirements.txt'],
        projectDir: '',
        application: 'shop.wsgi:application',
        addGunicorn: false,
        extras: [],
      },
    ],
    [
      'test/fixtures/uv-project',
      'manage.py',
      'mysite.settings',
      { manager: 'uv', dependencyFiles: ['pyproject.toml', 'uv.lock'], extras: ['prod'], addGunicorn: false },
    ],
    [
      'test/fixtures/poetry-project',
      'manage.py',
      'mysite.settings',
      { manager: 'poetry', dependencyFiles: ['pyproject.toml', 'poetry.lock'], addGunicorn: true },
    ],
    [
      'test/fixtures/pipenv-project',
      'manage.py',
      'mysite.settings',
      { manager: 'pipenv', dependencyFiles: ['Pipfile', 'Pipfile.lock'], addGunicorn: true },
    ],
    [
      'test/fixtures/subfolder',
      'backend/manage.py',
      'mysite.settings',
      { manager: 'pip', dependencyFiles: ['requirements.txt'], projectDir: 'backend', addGunicorn: true },
    ],
  ])('%s', (dir, managePy, settings, expected) => {
    expect(plan(dir, managePy, settings)).toMatchObject(expected);
  });

  it('follows -r includes and detects ASGI with uvicorn', () => {
    const root = tree({
      'manage.py': '',
      'requirements/prod.txt': '-r base.txt\ngunicorn\nuvicorn-worker\n',
      'requirements/base.txt': 'django\n',
      'site/wsgi.py': '',
      'site/asgi.py': '',
    });
    const p = planDjangoImage({
      contextDir: root,
      managePy: path.join(root, 'manage.py'),
      settingsModule: 'site.settings',
      pythonVersion: '3.12',
      healthPath: '/up',
    });
    expect(p).toMatchObject({
      manager: 'pip',
      dependencyFiles: ['requirements/prod.txt', 'requirements/base.txt'],
      asgi: true,
      application: 'site.asgi:application',
      workerClass: 'uvicorn_worker.UvicornWorker',
    });
    const text = renderDockerfile(p);
    expect(text).toContain('COPY requirements/prod.txt ./requirements/\nCOPY requirements/base.txt ./requirements/\n');
    expect(text).toContain('"--worker-class","uvicorn_worker.UvicornWorker"');
    expect(text).toContain("'/up'");
  });

  it('says what is missing', () => {
    const none = tree({ 'manage.py': '', 'mysite/wsgi.py': '' });
    expect(() =>
      planDjangoImage({
        contextDir: none,
        managePy: path.join(none, 'manage.py'),
        settingsModule: 'mysite.settings',
        pythonVersion: '3.11',
        healthPath: '/',
      }),
    ).toThrow('No dependency file found');
    const nowsgi = tree({ 'manage.py': '', 'requirements.txt': 'django\n' });
    expect(() =>
      planDjangoImage({
        contextDir: nowsgi,
        managePy: path.join(nowsgi, 'manage.py'),
        settingsModule: 'mysite.settings',
        pythonVersion: '3.11',
        healthPath: '/',
      }),
    ).toThrow('No mysite/wsgi.py next to the settings package');
  });
});

describe('renderDockerfile', () => {
  const text = renderDockerfile(plan('example', 'manage.py', 'shop.settings'));
  it('is multi-stage on the slim base of the Python version', () => {
    expect(text).toContain('ARG PYTHON_VERSION=3.11\n');
    expect(text.match(/^FROM python:\$\{PYTHON_VERSION\}-slim/gm)).toHaveLength(2);
  });
  it('installs dependencies from the lockfile before the code, with the index secrets mounted', () => {
    const deps = text.indexOf('COPY requirements.txt ./');
    const install = text.indexOf('RUN --mount=type=secret,id=index-env --mount=type=secret,id=index-ca');
    const code = text.indexOf('COPY . /app/');
    expect(deps).toBeGreaterThan(0);
    expect(install).toBeGreaterThan(deps);
    expect(code).toBeGreaterThan(install);
  });
  it('ships a venv without pip or translation sources: the base image pip installs into it', () => {
    const [builder, final] = text.split(/^FROM python:\$\{PYTHON_VERSION\}-slim$/m);
    expect(builder).toContain('RUN python -m venv --without-pip /opt/venv\n');
    expect(builder).toMatch(/^ {4}PIP_PYTHON=\/opt\/venv\/bin\/python \\$/m);
    expect(builder).toMatch(/ && pip install -r requirements.txt \\\n && find \/opt\/venv -name '\*\.po' -delete\n/);
    // The final stage takes the venv alone, and runs no pip.
    expect(final).toContain('COPY --from=builder /opt/venv /opt/venv\n');
    expect(final).not.toMatch(/--from=builder \/src|pip install|--mount/);
    expect(final).toMatch(/useradd --uid 10001 --gid app --no-log-init /);
  });
  it('runs as a non-root user, code and static files last, key only for collectstatic', () => {
    expect(text).toMatch(
      /COPY --from=builder \/opt\/venv \/opt\/venv\nWORKDIR \/app\n[\s\S]*\nCMD \[[^\n]*\n(#[^\n]*\n)*COPY \. \/app\/\n/,
    );
    expect(text).toMatch(
      /COPY \. \/app\/\n(#[^\n]*\n)*RUN out=\$\(DJANGO_SECRET_KEY=collectstatic-build-only SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput 2>&1\); s=\$\?;/,
    );
    expect(text).toMatch(
      /grep -q "Unknown command: 'collectstatic'"; then \\\n[^\n]*echo "django.contrib.staticfiles is not installed[^\n]*\n {4}else exit \$s; fi\nUSER app\n$/,
    );
    expect(text).not.toMatch(/^ENV[^\n]*SECRET_KEY/m);
    expect(text).toMatch(/^HEALTHCHECK [\s\S]*CMD \["python", "-c"/m);
  });
  it.each([
    [
      'test/fixtures/uv-project',
      'manage.py',
      /RUN python -m venv --without-pip \/opt\/venv[\s\S]*python -m venv --without-pip \/opt\/uv && pip --python \/opt\/uv\/bin\/python install uv==/,
    ],
    [
      'test/fixtures/poetry-project',
      'manage.py',
      /python -m venv --without-pip \/opt\/poetry && pip --python \/opt\/poetry\/bin\/python install poetry==[\s\S]* && pip install gunicorn \\\n/,
    ],
    [
      'test/fixtures/pipenv-project',
      'manage.py',
      /python -m venv --without-pip \/opt\/pipenv && pip --python \/opt\/pipenv\/bin\/python install pipenv==/,
    ],
    [
      'test/fixtures/subfolder',
      'backend/manage.py',
      /WORKDIR \/app\/backend\n[\s\S]*COPY \. \/app\/\n[\s\S]*python manage.py collectstatic/,
    ],
  ])('%s: tools in throwaway venvs, the project folder as the working directory', (dir, managePy, expected) => {
    const t = renderDockerfile(plan(dir, managePy));
    expect(t).toMatch(expected);
    expect(t.split('\nFROM ')[2]).not.toMatch(/\/opt\/(uv|poetry|pipenv)/);
  });
});

describe('rewriteSecretMounts (classic builder)', () => {
  it('fetches, runs and deletes in one RUN; leaves the rest alone', () => {
    const df =
      'FROM x\nRUN --mount=type=secret,id=index-env --mount=type=secret,id=tok,target=/root/.tok \\\n    . /run/secrets/index-env \\\n && pip install a\nRUN echo hi\n';
    const { text, ids } = rewriteSecretMounts(df, 'http://127.0.0.1:4000/abc');
    expect(ids).toEqual(['index-env', 'tok']);
    const lines = text.split('\n');
    expect(lines[0]).toBe('FROM x');
    expect(lines[1]).toMatch(/^RUN python3 -c 'import base64; exec\(base64\.b64decode\("[A-Za-z0-9+/=]+"\)\)' \\$/);
    expect(lines[2]).toBe(' && { . /run/secrets/index-env  && pip install a; }; s=$?; rm -rf /run/secrets/index-env /root/.tok; exit $s');
    expect(lines[3]).toBe('RUN echo hi');
    const script = Buffer.from(/b64decode\("([^"]+)"\)/.exec(lines[1]!)![1]!, 'base64').toString();
    expect(script).toContain('"http://127.0.0.1:4000/abc" + "/" + i');
    expect(script).toContain('[["index-env","/run/secrets/index-env"],["tok","/root/.tok"]]');
    expect(script).toContain('0o400');
  });
  it('refuses mounts the classic builder cannot emulate', () => {
    expect(() => rewriteSecretMounts('RUN --mount=type=cache,target=/root/.cache pip install a\n', 'u')).toThrow('needs BuildKit');
  });
  it('labels as one instruction', () => {
    expect(labelInstruction({ a: 'x y', 'b.c': 'q"' })).toBe('LABEL "a"="x y" "b.c"="q\\""');
  });
});

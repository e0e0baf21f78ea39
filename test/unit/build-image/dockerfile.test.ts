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
    const code = text.indexOf('COPY . .');
    expect(deps).toBeGreaterThan(0);
    expect(install).toBeGreaterThan(deps);
    expect(code).toBeGreaterThan(install);
  });
  it('runs as a non-root user, code last, key only for collectstatic', () => {
    expect(text).toMatch(/USER app\n[\s\S]*COPY --from=builder \/src \/app\n$/);
    expect(text).toMatch(
      /export DJANGO_SETTINGS_MODULE=shop.settings DJANGO_SECRET_KEY=collectstatic-build-only[\s\S]*then python manage.py collectstatic --noinput/,
    );
    expect(text).not.toMatch(/^ENV[^\n]*SECRET_KEY/m);
    expect(text).toMatch(/^HEALTHCHECK [\s\S]*CMD \["python", "-c"/m);
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

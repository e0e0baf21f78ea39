/**
 * migrate with django-dbbackup in INSTALLED_APPS (test/fixtures/migrate-dbbackup, SQLite, real
 * django-dbbackup from PyPI): the backup is `manage.py dbbackup --output-path` into backup-dir,
 * taken under the lock before applying, and its location is the `backup` output and the state.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';

const FIXTURE = 'test/fixtures/migrate-dbbackup';
let venv = '';

beforeAll(() => {
  venv = preparedVenv([path.join(REPO_ROOT, FIXTURE, 'requirements.txt')]);
});

/** Python on the runner (test set-up and checks, not the action). */
function py(cwd: string, args: string[]): string {
  return execFileSync(path.join(venv, 'bin', 'python'), args, {
    cwd,
    env: { ...process.env, DJANGO_SETTINGS_MODULE: 'dbb_site.settings' },
  }).toString();
}

describe('migrate with django-dbbackup', () => {
  it('backs up with manage.py dbbackup into backup-dir before applying, and records where', async () => {
    const ws = copyProject(FIXTURE);
    const j = new Job({ workspace: ws });
    seedSetupDjango(j, { venv, projectDir: ws, settingsModule: 'dbb_site.settings' });
    py(ws, ['manage.py', 'migrate', '-v0', 'ledger', '0001']);
    py(ws, [
      '-c',
      // Raw SQL: the model already has the column 0002 adds.
      'import sqlite3; c = sqlite3.connect("db.sqlite3"); c.executemany("insert into ledger_entry (label, amount) values (?, ?)", [("row %d" % i, i) for i in range(25)]); c.commit()',
    ]);

    const step = await j.run('migrate', { 'backup-dir': 'backups' });
    expect(step.exitCode, step.log).toBe(0);
    expect(step.outputs.applied).toBe('["ledger.0002_entry_note"]');

    // Where: backup-dir (under the workspace), the file dbbackup wrote there, in outputs and state.
    const file = step.outputs.backup!;
    expect(file).toMatch(new RegExp(`^${ws}/backups/default-\\d{8}T\\d{9}Z\\.dbbackup$`));
    expect(step.log).toContain('[command]');
    expect(step.log).toMatch(/manage\.py dbbackup --noinput --database default --output-path \S+\.dbbackup/);
    expect(step.log).toContain(`Backup: ${file} (${fs.statSync(file).size} bytes, dbbackup)`);
    const state = JSON.parse(fs.readFileSync(path.join(j.runnerTemp, 'slipway', 'state.json'), 'utf8')) as {
      migrate: { backup?: string; currentState: Record<string, string> };
    };
    expect(state.migrate.backup).toBe(file);
    expect(state.migrate.currentState).toEqual({ ledger: '0002_entry_note' });
    expect(step.summary).toContain('dbbackup');
    // Nothing went to dbbackup's own storage: --output-path wrote the file where migrate asked.
    expect(fs.existsSync(path.join(ws, 'dbbackup-storage'))).toBe(false);

    // What: the database as it was before applying (django-dbbackup's SQLite connector copies the
    // file): the 25 rows, and no `note` column yet; the live database has it now.
    const inspect = (db: string): string =>
      py(ws, [
        '-c',
        'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute("select count(*) from ledger_entry").fetchone()[0], [r[1] for r in c.execute("pragma table_info(ledger_entry)")])',
        db,
      ]).trim();
    expect(inspect(file)).toBe("25 ['id', 'label', 'amount']");
    expect(inspect(path.join(ws, 'db.sqlite3'))).toBe("25 ['id', 'label', 'amount', 'note']");
  });
});

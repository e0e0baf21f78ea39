import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGithubAnnotations } from '../../../packages/run-tests/src/checks';
import { cachePathOf, readTimingsPath, timingsDir, timingsFile } from '../../../packages/run-tests/src/timings';

describe('readTimingsPath', () => {
  it('reads JUnit XML and timings JSON from a folder, in name order, skipping skipped tests', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-timings-'));
    fs.writeFileSync(
      path.join(dir, 'a.xml'),
      '<testsuite><testcase classname="app.T" name="test_a" time="1.5"/><testcase classname="app.T" name="test_s" time="0"><skipped/></testcase></testsuite>',
    );
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ 'app.T.test_b': 2 }));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    expect(readTimingsPath(dir)).toEqual([{ 'app.T.test_a': 1.5 }, { 'app.T.test_b': 2 }]);
  });

  it('names the file of each shard layout', () => {
    expect(timingsFile('/t', { index: 2, total: 4 })).toBe('/t/timings-2of4.json');
    expect(timingsFile('/t', undefined)).toBe('/t/timings-1of1.json');
  });

  it('hands the cache the same path from any checkout (the cache version hashes it)', () => {
    const cwd = process.cwd();
    for (const workspace of [
      fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-ws-a-')),
      fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-ws-b-')),
    ]) {
      process.chdir(workspace);
      try {
        expect(cachePathOf(timingsFile(timingsDir(workspace), { index: 1, total: 2 }))).toBe('.slipway-timings/timings-1of2.json');
      } finally {
        process.chdir(cwd);
        fs.rmSync(workspace, { recursive: true, force: true });
      }
    }
  });
});

describe('parseGithubAnnotations', () => {
  it("reads ruff's GitHub output", () => {
    const out =
      '::error title=ruff (F401),file=/w/app/x.py,line=1,col=8,endLine=1,endColumn=10::app/x.py:1:8: F401 `os` imported but unused%0A  help: Remove\nFound 1 error.\n';
    expect(parseGithubAnnotations(out)).toEqual([
      {
        title: 'ruff (F401)',
        file: '/w/app/x.py',
        line: 1,
        endLine: 1,
        message: 'app/x.py:1:8: F401 `os` imported but unused\n  help: Remove',
      },
    ]);
  });
});

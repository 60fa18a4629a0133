/**
 * The accuracy suites say why they skip on a fresh clone (issue 21): without ../shared the helper
 * they share returns the skip reason and prints it as one `# suite: skipped: ...` line.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/cli.js';
import { sharedCorpusMissing } from './helpers/shared.js';

it('an absent corpus: a skip reason and one line naming ../shared; a present one: no skip', () => {
  const absent = join(tmpdir(), 'flowlens-no-such-corpus', 'ndpi');
  const script = `import { sharedCorpusMissing } from './test/helpers/shared.ts'; sharedCorpusMissing('dpi-accuracy', ${JSON.stringify(absent)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    `# dpi-accuracy: skipped: ${absent} is absent: the accuracy suites need the shared corpus checked out as ../shared beside the repository (README: Tests)\n`,
  );
  assert.equal(sharedCorpusMissing('any', REPO_ROOT), false);
});

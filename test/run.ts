/**
 * `npm test`: every suite through node's test runner, in two phases.
 * 1. The suites that do not depend on having the machine to themselves run two files at a time
 *    (FLOWLENS_TEST_CONCURRENCY): much of their time is spent waiting on child processes, browsers
 *    and timers, and the CI machine has two cores.
 * 2. The suites marked `@runs-alone` run one at a time, with nothing beside them: they capture on
 *    `lo` (where other suites' traffic would enter their counts), compare drops under load, or
 *    time what arrives within a second.
 * Arguments name test files to run instead of test/*.test.ts (still split into the two phases).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST_DIR = dirname(fileURLToPath(import.meta.url));
const ALONE_MARK = '@runs-alone';
/** The mark is a line comment of its own (`// @runs-alone (test/run.ts): why`), not any mention. */
const ALONE_LINE = /^\/\/ @runs-alone\b/m;

const concurrency = Number(process.env.FLOWLENS_TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`FLOWLENS_TEST_CONCURRENCY must be a whole number of at least 1, not '${process.env.FLOWLENS_TEST_CONCURRENCY}'`);
  process.exit(2);
}

const files =
  process.argv.length > 2
    ? process.argv.slice(2)
    : readdirSync(TEST_DIR)
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => relative(process.cwd(), join(TEST_DIR, f)));
const alone = files.filter((f) => ALONE_LINE.test(readFileSync(f, 'utf8')));
const shared = files.filter((f) => !alone.includes(f));

function runPhase(what: string, list: string[], lanes: number): number {
  if (list.length === 0) return 0;
  console.log(`# npm test: ${list.length} ${what}, ${lanes} at a time`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${lanes}`, ...list], { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

const first = runPhase('suites side by side', shared, concurrency);
const second = runPhase(`suites that run alone (${ALONE_MARK})`, alone, 1);
process.exit(first || second);

/**
 * The accuracy suites compare flowlens with reference tools on the shared corpus
 * (../shared/corpus, beside the repository; see the README's Tests). Without it they skip, and say
 * so in one line of the test output (a skip reason alone is easy to miss among passes).
 */
import { existsSync } from 'node:fs';

/** False when `path` exists; else the skip reason, printed once as `# SUITE: skipped: ...`. */
export function sharedCorpusMissing(suite: string, path: string): string | false {
  if (existsSync(path)) return false;
  const reason = `${path} is absent: the accuracy suites need the shared corpus checked out as ../shared beside the repository (README: Tests)`;
  console.log(`# ${suite}: skipped: ${reason}`);
  return reason;
}

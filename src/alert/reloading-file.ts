// A configuration file that is read again when it changes, without a restart. The file is polled
// (it survives editors that write a new file and rename it over the old one, which fs.watch loses
// track of), and each poll compares with the version read, not with the previous poll: fs.watchFile
// takes its first stat asynchronously, so a change made just after start-up was never seen. A version that does not parse is refused with one error naming file,
// line and reason, and the previous good version stays in force.
import { readFileSync, statSync } from 'node:fs';

export interface FileState {
  file: string;
  /** When the version in force was loaded (ms since the epoch); 0 before any. */
  loadedAt: number;
  /** The last refused version's error, cleared by the next good one. */
  error: string | null;
}

export class ReloadingFile<T> {
  readonly state: FileState;
  private current: T;
  private readonly timer: NodeJS.Timeout;
  /** The file's modification time, size and inode when the version last read was read. */
  private seen: string;

  /** Reads and parses the file now: a file that cannot be read or parsed throws (nothing to keep yet). */
  constructor(
    readonly file: string,
    private readonly parse: (file: string, text: string) => T,
    private readonly onChange: (value: T | null, error: Error | null) => void,
    pollMs = 1000,
  ) {
    this.seen = this.version();
    this.current = this.read();
    this.state = { file, loadedAt: Date.now(), error: null };
    this.timer = setInterval(() => {
      const now = this.version();
      if (now === this.seen) return;
      this.seen = now;
      this.reload();
    }, pollMs);
    this.timer.unref();
  }

  get value(): T {
    return this.current;
  }

  /** Reads the file again: in force when it parses, refused (and reported) when not. */
  reload(): void {
    try {
      this.current = this.read();
      this.state.loadedAt = Date.now();
      this.state.error = null;
      this.onChange(this.current, null);
    } catch (err) {
      this.state.error = (err as Error).message;
      this.onChange(null, err as Error);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Taken before the file is read: a write between the two is seen by the next poll. */
  private version(): string {
    try {
      const st = statSync(this.file);
      return `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return 'missing';
    }
  }

  private read(): T {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new Error(`${this.file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    return this.parse(this.file, text);
  }
}

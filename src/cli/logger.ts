// pino logger on stderr (stdout is for data: summaries, exports): JSON lines, or pretty lines
// when stderr is a terminal.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.FLOWLENS_LOG_LEVEL ?? 'info'): Logger {
  if (process.stderr.isTTY && !process.env.FLOWLENS_LOG_JSON) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
}

// pino logger on stderr (stdout is for data: summaries, exports): JSON lines, or pretty lines
// when stderr is a terminal (--log-format auto, the default), or either one by choice.
import type { Command } from 'commander';
import { pino, type Logger } from 'pino';

export type { Logger };

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function createLogger(level = 'info', format: LogFormat = 'auto'): Logger {
  const terminal = process.stderr.isTTY === true;
  if (format === 'pretty' || (format === 'auto' && terminal)) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: terminal, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
}

/** The logger the program's global --log-level and --log-format ask for. */
export function programLogger(program: Command): Logger {
  const o = program.opts();
  return createLogger(o.logLevel as string, o.logFormat as LogFormat);
}

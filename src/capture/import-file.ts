// What the single-threaded import (import.ts) and the import through decode workers
// (import-parallel.ts) say alike about one file: unsupported link types, a record cut short, a
// file that failed, packets with impossible times. Kept in one place so that both say it the same.
import { isSupportedLinkType } from '../decode/index.js';
import { MALFORMED_REASONS, R_PCAP_BAD_TIMESTAMP } from '../decode/packet.js';
import { isoMicros } from '../store/time.js';
import { CaptureFileError, type CaptureFileReader, MAX_TIMESTAMP_US } from './pcap-file.js';

/** Warns once per file about each link type it holds that flowlens cannot decode. */
export function warnUnsupportedLinkTypes(reader: CaptureFileReader, warned: Set<number>, path: string, onWarning?: (message: string) => void): void {
  for (const lt of reader.linkTypes) {
    if (!isSupportedLinkType(lt) && !warned.has(lt)) {
      warned.add(lt);
      onWarning?.(`${path}: link type ${lt} is not supported; its packets are counted as malformed (link.unsupported)`);
    }
  }
}

/** The warning of a file that ends inside a record. */
export function truncationWarning(t: NonNullable<CaptureFileReader['truncated']>): string {
  return `file ends inside a record at byte ${t.offset} (${t.got} of ${t.wanted} bytes): the last packet is cut short`;
}

/**
 * Why reading a file stopped: its own fault (CaptureFileError), or a read error of the file system
 * (EIO...) or a fault met in its bytes. The file fails; the others go on.
 */
export function fileFailure(err: unknown, path: string, bytesRead: number): string {
  if (err instanceof CaptureFileError) return err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message;
  const e = err as NodeJS.ErrnoException;
  const message = e instanceof Error ? e.message : String(err);
  return `reading stopped at byte ${bytesRead}: ${e?.code && !message.includes(e.code) ? `${e.code}: ` : ''}${message}`;
}

/** The note on a file's packets whose times cannot be stored (counted as malformed). */
export function badTimesNote(badTimes: number): string {
  return `${badTimes} packet${badTimes === 1 ? '' : 's'} with a time outside ${isoMicros(0)} .. ${isoMicros(MAX_TIMESTAMP_US)} or a fraction of a second of 1 s or more, counted as malformed (${MALFORMED_REASONS[R_PCAP_BAD_TIMESTAMP]})`;
}

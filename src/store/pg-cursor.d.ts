// Types for pg-cursor (it ships none): the part of its API the QuestDB store uses.
declare module 'pg-cursor' {
  import type { Submittable } from 'pg';

  export default class Cursor<Row = Record<string, unknown>> implements Submittable {
    constructor(text: string, values?: unknown[] | null, config?: { rowMode?: 'array'; types?: unknown });
    submit: Submittable['submit'];
    /** The next `rows` rows; [] once the result is exhausted. */
    read(rows: number): Promise<Row[]>;
    /** Closes the portal (when the result was not read to its end) and waits for the server. */
    close(): Promise<void>;
  }
}

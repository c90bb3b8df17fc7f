// pg-cursor ships no types; the tests use a small part of it (a Submittable for client.query).
declare module 'pg-cursor' {
  import type { Submittable } from 'pg';
  export default class Cursor<Row = Record<string, unknown>> implements Submittable {
    constructor(text: string, values?: unknown[]);
    submit: Submittable['submit'];
    read(rows: number): Promise<Row[]>;
    close(): Promise<void>;
  }
}

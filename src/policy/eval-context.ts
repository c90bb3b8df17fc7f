// What one evaluation knows about one exchange, computed lazily and at most once:
// the facts by name, normalised text for keywords, detected entity types, and the
// local day and minute in each time zone a rule asks about.

import { GatehouseError } from '../errors/index.js';
import type { Exchange } from '../exchange/index.js';
import { normalizeForKeywords } from './normalize-text.js';

/** The `tables` fact with the names its tables may stand for (SqlFacts.tablesMayBe): not a name a rule can use. */
export const wideTables = '\u0000tables';

export type DetectEntities = (text: string) => ReadonlySet<string>;

const dayIndex: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

export function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

export class EvalContext {
  readonly exchange: Exchange;
  private readonly detect: DetectEntities | undefined;
  private normalized: Map<string, string> | undefined;
  private utf8ByField: Map<string, Buffer | null> | undefined;
  private entitiesByField: Map<string, ReadonlySet<string>> | undefined;
  private times: Map<string, { day: number; minute: number }> | undefined;

  constructor(exchange: Exchange, detect: DetectEntities | undefined) {
    this.exchange = exchange;
    this.detect = detect;
  }

  /** A fact by the name a rule uses: a RequestFacts field, or a SQL fact (`tables`, `statementClasses`, `risky`). */
  fact(name: string): unknown {
    const facts = this.exchange.facts;
    switch (name) {
      case 'tables':
        return facts.sql?.tables;
      case wideTables:
        return facts.sql?.tablesMayBe ? [...facts.sql.tables, ...facts.sql.tablesMayBe] : facts.sql?.tables;
      case 'statementClasses':
        return facts.sql?.classes;
      case 'risky':
        return facts.sql?.risky;
      case 'text':
        // Fail closed: a rule about the prompt cannot hold or fail on text nobody could read.
        if (facts.textUnreadable !== undefined) {
          throw new GatehouseError('invalid_request_body', { message: 'The request body could not be read, so its text could not be checked.', detail: facts.textUnreadable });
        }
        return facts.text;
      default:
        return (facts as unknown as Record<string, unknown>)[name];
    }
  }

  /** A string fact as text; a list fact joined by newlines. */
  text(name: string): string | undefined {
    const value = this.fact(name);
    if (typeof value === 'string') return value;
    if (Array.isArray(value)) return value.filter((v) => typeof v === 'string').join('\n');
    return undefined;
  }

  /**
   * A string fact as UTF-8, encoded once: re2 works on UTF-8, and given a string it
   * would encode it again for every regex.
   */
  utf8(name: string): Buffer | undefined {
    this.utf8ByField ??= new Map();
    let value = this.utf8ByField.get(name);
    if (value === undefined) {
      const fact = this.fact(name);
      value = typeof fact === 'string' ? Buffer.from(fact, 'utf8') : null;
      this.utf8ByField.set(name, value);
    }
    return value ?? undefined;
  }

  normalizedText(name: string): string | undefined {
    this.normalized ??= new Map();
    let value = this.normalized.get(name);
    if (value === undefined) {
      const text = this.text(name);
      if (text === undefined) return undefined;
      value = normalizeForKeywords(text);
      this.normalized.set(name, value);
    }
    return value;
  }

  entities(name: string): ReadonlySet<string> {
    this.entitiesByField ??= new Map();
    let found = this.entitiesByField.get(name);
    if (found === undefined) {
      const text = this.text(name);
      found = text === undefined || this.detect === undefined ? new Set() : this.detect(text);
      this.entitiesByField.set(name, found);
    }
    return found;
  }

  /** Day of week (0 = Sunday) and minute of day at the exchange's start, in `timeZone`. */
  localTime(timeZone: string): { day: number; minute: number } {
    this.times ??= new Map();
    let time = this.times.get(timeZone);
    if (!time) {
      time = localTimeAt(timeZone, this.exchange.startedAt);
      this.times.set(timeZone, time);
    }
    return time;
  }
}

// formatToParts costs microseconds; the answer only changes once a minute (no time
// zone offset has a finer step), so it is cached per zone and minute.
const lastByZone = new Map<string, { epochMinute: number; day: number; minute: number }>();

function localTimeAt(timeZone: string, at: number): { day: number; minute: number } {
  const epochMinute = Math.floor(at / 60_000);
  const cached = lastByZone.get(timeZone);
  if (cached && cached.epochMinute === epochMinute) return cached;
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(timeZone).formatToParts(at)) {
    if (part.type === 'weekday') day = dayIndex[part.value] ?? 0;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  const time = { epochMinute, day, minute: hour * 60 + minute };
  lastByZone.set(timeZone, time);
  return time;
}

// A Prometheus histogram with one label, `connection`, cheap to observe: a Map lookup
// and a bucket increment, where prom-client's Histogram validates and hashes a label
// object on every call. It is registered in a prom-client Registry beside the others
// and exports what prom-client's Histogram exports, in the same order (per connection:
// the buckets, `+Inf`, `_sum`, `_count`), so /metrics reads the same.

interface Cell {
  readonly labels: { connection: string };
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  metricName: string;
}

export class PerConnectionHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #upperBounds: readonly number[];
  #cells = new Map<string, Cell>();

  constructor(name: string, help: string, upperBounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#upperBounds = upperBounds;
  }

  observe(connection: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let cell = this.#cells.get(connection);
    if (!cell) this.#cells.set(connection, (cell = { labels: { connection }, buckets: new Float64Array(this.#upperBounds.length + 1), sum: 0, count: 0 }));
    const bounds = this.#upperBounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.buckets[i]!++;
    cell.sum += value;
    cell.count++;
  }

  /** Called by the registry before reading (prom-client's `collect` hook); nothing to do. */
  collect(): void {}

  reset(): void {
    this.#cells = new Map();
  }

  /** For the text format: the connection as a shared label, after `le` (as prom-client writes it). */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#samples(true) };
  }

  /** For the JSON form (registry.getMetricsAsJSON): labels merged. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#samples(false) };
  }

  #samples(shared: boolean): Sample[] {
    const out: Sample[] = [];
    const bucketName = `${this.name}_bucket`;
    const sample = (labels: Record<string, string | number>, value: number, metricName: string, cell: Cell): Sample =>
      shared ? { value, labels, sharedLabels: cell.labels, metricName } : { value, labels: { ...labels, ...cell.labels }, metricName };
    for (const cell of this.#cells.values()) {
      let cumulative = 0;
      this.#upperBounds.forEach((le, i) => {
        cumulative += cell.buckets[i]!;
        out.push(sample({ le }, cumulative, bucketName, cell));
      });
      out.push(sample({ le: '+Inf' }, cell.count, bucketName, cell));
      out.push(sample({}, cell.sum, `${this.name}_sum`, cell));
      out.push(sample({}, cell.count, `${this.name}_count`, cell));
    }
    return out;
  }
}

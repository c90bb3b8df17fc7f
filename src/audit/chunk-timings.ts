// When each piece of an answer was relayed, kept compactly for replay: pairs of
// [ms since the exchange started, bytes]. At most `max` pairs: when full, neighbours
// merge (bytes summed, the later time kept), halving the resolution, so a long stream
// costs a bounded amount and still shows its shape.

export class ChunkTimings {
  readonly #max: number;
  #pairs: [number, number][] = [];

  constructor(max = 512) {
    this.#max = max;
  }

  add(atMs: number, bytes: number): void {
    if (this.#pairs.length >= this.#max) {
      const merged: [number, number][] = [];
      for (let i = 0; i < this.#pairs.length; i += 2) {
        const a = this.#pairs[i]!;
        const b = this.#pairs[i + 1];
        merged.push(b ? [b[0], a[1] + b[1]] : a);
      }
      this.#pairs = merged;
    }
    this.#pairs.push([Math.round(atMs), bytes]);
  }

  toJSON(): [number, number][] {
    return this.#pairs.map(([t, b]) => [t, b]);
  }
}

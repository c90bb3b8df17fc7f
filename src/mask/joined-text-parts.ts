// A model's answer may hold its text in several parts that clients join into one text:
// Anthropic's content blocks (citations split the text), the Responses API's
// `output_text` parts (the SDK's `output_text` joins them, across message items too),
// a chat message whose `content` is a list of parts, Gemini's candidate parts, Bedrock
// Converse's content blocks. A value may begin in one part and end in the next, and
// masking each part alone would let its pieces through (`jane.do` | `e@example.com`).
// So adjacent text parts of one kind are one text for detection: it is masked whole,
// each part keeps its share of it, and a value that spans parts goes, masked, to the
// part where it ends (as streaming moves held text into the next part). The JSON
// maskers (json-masker.ts, json-text-masker.ts) ask here at the containers below.
// Requests too (request scrubbing masks them with the same maskers): a prompt's message
// given as several text parts (OpenAI, Anthropic, Cohere, Mistral and Bedrock Converse
// `messages[].content`, Anthropic and Bedrock `system`, Gemini `contents[].parts`,
// Responses `input[].content`) reaches the model as one text, so a value split across
// its parts reached it whole.

import { applyFindings, type EntityCounts } from './operators.js';
import type { MaskPlan } from './plan.js';
import { isRecord } from './json-value.js';
import { GatehouseError } from '../errors/index.js';

/**
 * The text shows a different number of parts than its parsed value (duplicate member
 * names): the shares cannot be placed, so the answer is not sent (fail closed; masked as
 * plain text instead, the pieces of a split value would go out).
 */
export function partsMismatch(): GatehouseError {
  return new GatehouseError('masking_failed', { detail: 'the parts of a text joined across parts do not line up (duplicate member names?)' });
}

/** A text part: what kind of text it is (parts join only with their own kind), which member holds it, and the text. */
interface TextPart {
  readonly kind: string;
  readonly field: string;
  readonly text: string;
}
/**
 * Another part: an object that is no text part and ends a run (`other`), or that clients
 * pass over when they join the text (`skip`); or a gap that is no object at all.
 */
type Entry = TextPart | 'other' | 'skip' | 'gap';

interface PartsShape {
  /** The array holding the parts (a JSON path as the maskers walk it: keys, `[]` for each element). */
  readonly container: readonly string[];
  /** Where each part object is. */
  readonly part: readonly string[];
  /** The container's entries in document order, one for each part object. */
  entries(container: readonly unknown[]): Entry[];
}

/** A part whose member `field` is a string and whose `type` is one of `types` (kind: the type). */
function typedPart(types: readonly string[], field = 'text') {
  return (part: unknown): Entry => {
    if (!isRecord(part)) return 'gap';
    const type = part['type'];
    return typeof type === 'string' && types.includes(type) && typeof part[field] === 'string' ? { kind: type, field, text: part[field] } : 'other';
  };
}

const anthropicText = typedPart(['text']);
const anthropicThinking = typedPart(['thinking'], 'thinking');
const chatText = typedPart(['text']);
const responsesText = typedPart(['output_text']);
const responsesInput = typedPart(['input_text', 'output_text']);

/**
 * A message part of a request (or Cohere's answer): a `text` part of OpenAI, Anthropic,
 * Cohere or Mistral (`type: "text"`), or a Bedrock Converse block (`{text}`, no type);
 * an Anthropic `thinking` block apart. Anything else (images, tool results) ends a run.
 */
function messagePart(part: unknown): Entry {
  if (!isRecord(part)) return 'gap';
  const type = part['type'];
  if (type === 'thinking') return anthropicThinking(part);
  return (type === 'text' || type === undefined) && typeof part['text'] === 'string' ? { kind: 'text', field: 'text', text: part['text'] } : 'other';
}

const shapes: readonly PartsShape[] = [
  // Anthropic Messages: `content[]` text blocks (and thinking blocks, joined apart).
  { container: ['content'], part: ['content', '[]'], entries: (c) => c.map((p) => (isRecord(p) && p['type'] === 'thinking' ? anthropicThinking(p) : anthropicText(p))) },
  // OpenAI chat completions: a message whose `content` is a list of parts.
  { container: ['choices', '[]', 'message', 'content'], part: ['choices', '[]', 'message', 'content', '[]'], entries: (c) => c.map(chatText) },
  // OpenAI Responses: the `output_text` parts of every message item, joined as the SDK's
  // `output_text` joins them (other items and parts are passed over).
  {
    container: ['output'],
    part: ['output', '[]', 'content', '[]'],
    entries: (items) =>
      items.flatMap((item): Entry[] => {
        if (!isRecord(item) || !Array.isArray(item['content'])) return [];
        const message = item['type'] === 'message';
        return (item['content'] as unknown[]).map((p): Entry => {
          const entry = message ? responsesText(p) : isRecord(p) ? 'other' : 'gap';
          return entry === 'other' ? 'skip' : entry;
        });
      }),
  },
  // Google Gemini: a candidate's text parts (thought parts joined apart).
  { container: ['candidates', '[]', 'content', 'parts'], part: ['candidates', '[]', 'content', 'parts', '[]'], entries: (c) => c.map(untypedPart('thought')) },
  // Bedrock Converse: `output.message.content[]` text blocks.
  { container: ['output', 'message', 'content'], part: ['output', 'message', 'content', '[]'], entries: (c) => c.map(untypedPart(undefined)) },
  // Cohere v2 chat: `message.content[]` text items.
  { container: ['message', 'content'], part: ['message', 'content', '[]'], entries: (c) => c.map(messagePart) },
  // Requests: a message's text parts (chat completions, Anthropic, Cohere, Mistral, Bedrock Converse).
  { container: ['messages', '[]', 'content'], part: ['messages', '[]', 'content', '[]'], entries: (c) => c.map(messagePart) },
  // Anthropic's and Bedrock Converse's `system` as a list of text blocks.
  { container: ['system'], part: ['system', '[]'], entries: (c) => c.map(messagePart) },
  // Gemini requests: a turn's parts, and the system instruction's.
  { container: ['contents', '[]', 'parts'], part: ['contents', '[]', 'parts', '[]'], entries: (c) => c.map(untypedPart('thought')) },
  { container: ['systemInstruction', 'parts'], part: ['systemInstruction', 'parts', '[]'], entries: (c) => c.map(untypedPart('thought')) },
  // Responses API requests: an input message's `input_text` parts.
  { container: ['input', '[]', 'content'], part: ['input', '[]', 'content', '[]'], entries: (c) => c.map(responsesInput) },
];

/** A part with a string `text` (kind `text`, or `thought` where `flag` is true). */
function untypedPart(flag: string | undefined) {
  return (part: unknown): Entry => {
    if (!isRecord(part)) return 'gap';
    if (typeof part['text'] !== 'string') return 'other';
    return { kind: flag !== undefined && part[flag] === true ? flag : 'text', field: 'text', text: part['text'] };
  };
}

const lastKeys = new Set(shapes.map((s) => s.container.at(-1)!));

/** The shape whose container is at `path`, if any (cheap for every other array). */
export function partsShapeAt(path: readonly string[]): PartsShape | undefined {
  if (path.length === 0 || !lastKeys.has(path[path.length - 1]!)) return undefined;
  return shapes.find((s) => s.container.length === path.length && s.container.every((k, i) => k === path[i]));
}

export function samePath(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/** A part's text masked as its share of the joined text (`dropped`: a `drop` finding was in it). */
export interface PartShare {
  readonly field: string;
  readonly text: string;
  readonly dropped: boolean;
}

/**
 * For each part object under `container` (in document order), its masked share when it
 * is in a run of two or more adjacent text parts of one kind, else undefined (masked
 * alone, as any string); undefined when no part is in such a run. `planAt` gives the
 * plan that masks a part's text member (undefined: none does, so it is not joined).
 */
export function joinedShares(shape: PartsShape, container: readonly unknown[], planAt: (field: string) => MaskPlan | undefined, counts: EntityCounts): (PartShare | undefined)[] | undefined {
  const shares: (PartShare | undefined)[] = [];
  /** The current run: its parts and where their shares go. */
  let run: TextPart[] = [];
  let at: number[] = [];
  let joined = false;
  const close = () => {
    const plan = run.length >= 2 ? planAt(run[0]!.field) : undefined;
    if (plan) {
      maskJoined(run, plan, counts).forEach((share, k) => (shares[at[k]!] = share));
      joined = true;
    }
    run = [];
    at = [];
  };
  for (const entry of shape.entries(container)) {
    if (entry === 'gap') close();
    else if (entry === 'other' || entry === 'skip') {
      if (entry === 'other') close();
      shares.push(undefined);
    } else {
      if (run.length > 0 && run[0]!.kind !== entry.kind) close();
      run.push(entry);
      at.push(shares.length);
      shares.push(undefined);
    }
  }
  close();
  return joined ? shares : undefined;
}

/** The parts' texts masked as one text; a value across parts goes to the part where it ends. */
function maskJoined(parts: readonly TextPart[], plan: MaskPlan, counts: EntityCounts): PartShare[] {
  const text = parts.map((p) => p.text).join('');
  const findings = plan.find(text);
  if (findings.length === 0) return parts.map((p) => ({ field: p.field, text: p.text, dropped: false }));
  // Each boundary between parts, moved back to the start of a finding it would cut.
  const bounds: number[] = [0];
  let end = 0;
  let f = 0;
  for (const part of parts) {
    end += part.text.length;
    while (f < findings.length && findings[f]!.end <= end) f++;
    const cut = f < findings.length && findings[f]!.start < end ? findings[f]!.start : end;
    bounds.push(Math.max(cut, bounds[bounds.length - 1]!));
  }
  bounds[bounds.length - 1] = text.length;
  let next = 0;
  return parts.map((part, i) => {
    const from = bounds[i]!;
    const to = bounds[i + 1]!;
    const own = [];
    while (next < findings.length && findings[next]!.start < to) {
      const g = findings[next++]!;
      own.push({ ...g, start: g.start - from, end: g.end - from });
    }
    if (own.some((g) => g.operator === 'drop')) {
      for (const g of own) counts[g.type] = (counts[g.type] ?? 0) + 1;
      return { field: part.field, text: '', dropped: true };
    }
    return { field: part.field, text: applyFindings(text.slice(from, to), own, counts), dropped: false };
  });
}

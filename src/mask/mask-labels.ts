// The labels a masking plan writes in place of what it finds (`[EMAIL]` under redact and
// drop, `[EMAIL:3f9a1c2b7d4e]` under hash; operators.ts), for a reader that must tell a
// label sent back from a value: a client writing a masked text back over the stored one
// (the PostgreSQL adapter's masked-writes.ts). Read-only: nothing here masks.

import { builtinEntityTypes } from '../detect/index.js';
import type { MaskPlan, MaskProfile } from './plan.js';

/** The entity types a profile masks in text: its `entities`, else every type its detector reports. */
export function profileTypes(profile: MaskProfile): readonly string[] {
  if (profile.entities) return profile.entities;
  return [...builtinEntityTypes, ...(profile.customEntities ?? []).map((c) => c.name), ...(profile.denyLists ?? []).map((d) => d.name)];
}

// `[TYPE]` or `[TYPE:<12 hex>]`; bounded (types are names from config or the built-in list).
const labelShape = /\[([A-Za-z0-9_]{1,64})(?::[0-9a-f]{12})?\]/g;

/** The first label of one of the plan's types in `text` (`[EMAIL]`, `[EMAIL:3f9a1c2b7d4e]`); undefined when none. */
export function maskLabelIn(plan: MaskPlan, text: string): string | undefined {
  const types = plan.types;
  if (!types || types.size === 0 || !text.includes('[')) return undefined;
  for (const m of text.matchAll(labelShape)) if (types.has(m[1]!)) return m[0];
  return undefined;
}

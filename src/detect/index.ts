// Detection of PII and secrets. `detectEntities` / `entityTypes` use the built-in
// detectors with default settings; profiles build their own with `createDetector`.

import { createDetector } from './detector.js';
import type { Detection } from './types.js';

export { builtinHoldBack, contextStart } from './hold-back.js';
export { createDetector, resolveOverlaps, type Detector, type DetectorOptions, type CustomEntity, type DenyList } from './detector.js';
export { builtinEntityTypes, credentialEntityTypes, type Detection, type BuiltinEntityType } from './types.js';
export { credentialLabel, redactPathCredentials, redactTextCredentials } from './path-credentials.js';
export { luhn, mod97 } from './validators.js';

const builtin = createDetector();

/** Every built-in finding in `text`, in order, without overlaps. */
export function detectEntities(text: string): Detection[] {
  return builtin.detect(text);
}

/** The set of entity types found in `text` (for policy conditions on entity types). */
export function entityTypes(text: string): ReadonlySet<string> {
  return new Set(builtin.detect(text).map((d) => d.type));
}

// Builds the masking planner from the validated `masking` config section.

import type { GatehouseConfig } from '../config/index.js';
import { MaskPlanner, type MaskProfile } from './plan.js';

export function maskPlannerFromConfig(masking: GatehouseConfig['masking']): MaskPlanner {
  const profiles: MaskProfile[] = Object.entries(masking.profiles).map(([name, p]) => ({
    name,
    entities: p.entities,
    operator: p.operator,
    keepLast: p.keepLast,
    hashKey: p.hashKey,
    fields: p.fields,
    applyTo: p.applyTo,
    customEntities: p.customEntities,
    denyLists: p.denyList,
    allowList: p.allowList,
    minScore: p.minScore,
    embeddings: p.embeddings,
  }));
  return new MaskPlanner(profiles);
}

export { MaskPlanner, type MaskPlan, type MaskProfile, type MaskOperator, type ApplyTo, type EmbeddingsRule, type Finding } from './plan.js';
export { applyFindings, addCounts, replacement, type EntityCounts } from './operators.js';
export { maskJsonValue, maskJsonText, maskJsonAt, compileFieldPaths } from './json-masker.js';
export { StreamTextMasker } from './stream-masker.js';
export { SseMasker, type SseMaskerOptions } from './sse-masker.js';
export { transformEmbeddings, transformVector, toFloat16 } from './embeddings.js';
export { maskRequestBody } from './request-scrubber.js';
export { maskPlannerFromConfig } from './from-config.js';
export { credentialRedactor, credentialEntities } from './credential-redactor.js';

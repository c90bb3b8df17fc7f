export { compilePolicy, combineEffects, policyRuleNames, PolicyError, type Policy, type DecisionPolicy, type PolicySource, type AccessRuleSource, type CompileOptions, type Explanation, type RuleExplanation, type ResponseViolation } from './compile-policy.js';
export { enforceDecision } from './enforce-decision.js';
export { normalizeForKeywords } from './normalize-text.js';
export { buildPolicy, collectPolicySource, loadRuleFile, packPath, policySourceOf, policyFiles, type PolicyInputs } from './load-policy.js';
export type { DetectEntities } from './eval-context.js';
export { createLimiter, withLimitObligations, type Admission, type Limiter } from './limits/enforce-limits.js';
export { createMemoryLimitStore, type LimitStore, type CounterRequest } from './limits/limit-store.js';
export { createRedisLimitStore } from './limits/redis-limit-store.js';
export { createPolicyRuntime, PolicyReloadError, type PolicyRuntime, type PolicyChangeEvent, type PolicyReloadResult } from './policy-runtime.js';

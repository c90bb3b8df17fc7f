export { compilePolicy, combineEffects, type Policy, type AccessRuleSource } from './compile-policy.js';
export { enforceDecision } from './enforce-decision.js';

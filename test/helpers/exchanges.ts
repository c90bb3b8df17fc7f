// A plain recorded exchange for audit tests: an API-key service calling chat
// completions, with the fields a test may override.

import { newId } from '../../src/exchange/ids.js';
import type { Exchange } from '../../src/exchange/index.js';

export const sampleStartedAt = 1795395550123;

export function sampleExchange(overrides: Partial<Exchange> = {}): Exchange {
  return {
    id: newId('ex'),
    sessionId: 'ses_test',
    protocol: 'http',
    connection: 'openai',
    operation: 'chat.completions',
    startedAt: sampleStartedAt,
    client: { address: '10.0.0.7', userAgent: 'test-agent' },
    facts: { model: 'gpt-4o-mini', stream: true, text: 'What is 2+2?' },
    identity: { subject: 'key:ci-bot', kind: 'service', groups: ['ml', 'ops'], method: 'api_key', credentialId: '0123456789abcdef' },
    ...overrides,
  };
}

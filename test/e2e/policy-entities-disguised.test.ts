// Security regression: a policy `entities` condition read the prompt as written only,
// so a rule refusing prompts with a card number was passed by writing it with
// zero-width spaces, full-width or Arabic-Indic digits, which masking reads as the
// number. The condition now reads the text's disguise view too, as masking does.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

describe('policy entities conditions on disguised values', () => {
  let g: SdkGateway;
  before(async () => {
    g = await startSdkGateway({
      extraYaml: `policy:
  rules:
    - name: no-cards-in-prompts
      effect: deny
      message: No card numbers in prompts.
      when:
        - entities: [credit_card]
`,
    });
    g.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] })));
  });
  after(() => g.close());

  test('a card number written with zero-width spaces, full-width or Arabic-Indic digits is refused like one written plainly', async () => {
    const client = await g.client(['ml']);
    for (const card of ['4111 1111 1111 1111', '4111\u200b1111\u200b1111\u200b1111', '４１１１ １１１１ １１１１ １１１１', '٤١١١ ١١١١ ١١١١ ١١١١']) {
      await assert.rejects(client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `charge ${card} please` }] }), (error: any) => error.status === 403 && error.error?.rule === 'no-cards-in-prompts', JSON.stringify(card));
    }
    const ok = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'order 4111 is late' }] });
    assert.equal(ok.choices[0]!.message.content, 'ok');
  });
});

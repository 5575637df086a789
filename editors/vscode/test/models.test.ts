import * as assert from 'assert';

import { PULL_MODELS_COMMAND, pullModelsNotice } from '../src/models';

describe('"CodeForge: Download models" (codeforge.pullModels)', () => {
  it('is the command the server implements', () => {
    assert.strictEqual(PULL_MODELS_COMMAND, 'codeforge.pullModels');
  });

  it('says the models were installed when the server downloaded some', () => {
    assert.deepStrictEqual(pullModelsNotice({ result: { installed: 2 } }), {
      kind: 'info',
      text: 'CodeForge: models installed (2 downloaded and verified).',
    });
  });

  it('says they were already there when the server downloaded none', () => {
    assert.deepStrictEqual(pullModelsNotice({ result: { installed: 0 } }), {
      kind: 'info',
      text: 'CodeForge: the models are already installed (and verified).',
    });
  });

  it('shows the server\'s error', () => {
    // vscode-languageclient rejects with a ResponseError (an Error with the server's message).
    const e = Object.assign(new Error('CodeForge could not install Qwen2.5-Coder: no source answered'), { code: -32603 });
    assert.deepStrictEqual(pullModelsNotice({ error: e }), {
      kind: 'error',
      text: 'CodeForge: downloading the models failed: CodeForge could not install Qwen2.5-Coder: no source answered',
    });
    assert.strictEqual(pullModelsNotice({ error: { message: 'boom' } }).text, 'CodeForge: downloading the models failed: boom');
    assert.strictEqual(pullModelsNotice({ error: '' }).text, 'CodeForge: downloading the models failed: no reason given');
  });

  it('tells an older server apart (unknown command)', () => {
    const n = pullModelsNotice({ error: new Error('unknown command `codeforge.pullModels`') });
    assert.strictEqual(n.kind, 'error');
    assert.match(n.text, /older than the extension/);
    assert.match(n.text, /codeforge model pull/);
  });

  it('reports an answer of the wrong shape instead of guessing', () => {
    for (const result of [null, {}, { installed: -1 }, { installed: 1.5 }, { installed: '2' }]) {
      const n = pullModelsNotice({ result });
      assert.strictEqual(n.kind, 'error', JSON.stringify(result));
      assert.match(n.text, /unexpected answer to codeforge\.pullModels/);
    }
  });
});

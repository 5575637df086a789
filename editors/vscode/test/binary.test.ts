import * as assert from 'assert';

import { findBinary, formatContext, missingBinaryMessage, removedKeys, serverArgs } from '../src/binary';

describe('finding the server binary', () => {
  const exe = (set: string[]) => (p: string) => set.includes(p);

  it('uses the setting and nothing else when it is set', () => {
    assert.deepStrictEqual(findBinary('/opt/cf/codeforge', '/usr/bin', '/home/u', exe(['/opt/cf/codeforge'])), {
      found: '/opt/cf/codeforge',
      tried: ['/opt/cf/codeforge'],
    });
    const r = findBinary('/wrong/codeforge', '/usr/bin', '/home/u', exe(['/usr/bin/codeforge']));
    assert.strictEqual(r.found, undefined);
    assert.match(missingBinaryMessage(r, true), /`codeforge.server.path` is set to \/wrong\/codeforge, which is not an executable file/);
  });

  it('expands ~ in the setting', () => {
    assert.strictEqual(findBinary('~/bin/codeforge', '', '/home/u', exe(['/home/u/bin/codeforge'])).found, '/home/u/bin/codeforge');
  });

  it('searches PATH in order, then ~/.cargo/bin', () => {
    assert.strictEqual(findBinary('', '/a:/b:/c', '/home/u', exe(['/b/codeforge', '/c/codeforge'])).found, '/b/codeforge');
    const r = findBinary(undefined, '/a', '/home/u', exe(['/home/u/.cargo/bin/codeforge']));
    assert.deepStrictEqual(r, { found: '/home/u/.cargo/bin/codeforge', tried: ['/a/codeforge', '/home/u/.cargo/bin/codeforge'] });
  });

  it('gives the fix when nothing is found', () => {
    const r = findBinary('', '/a:/b', '/home/u', exe([]));
    assert.strictEqual(r.found, undefined);
    const m = missingBinaryMessage(r, false);
    assert.match(m, /not on PATH/);
    assert.match(m, /cargo install --path server\/cli/);
    assert.match(m, /codeforge\.server\.path/);
  });

  it('passes the cache dir before the subcommand', () => {
    assert.deepStrictEqual(serverArgs(''), ['lsp']);
    assert.deepStrictEqual(serverArgs('/tmp/c'), ['--cache-dir', '/tmp/c', 'lsp']);
  });
});

describe('context view and restarts', () => {
  it('formats what would be retrieved as a markdown table', () => {
    const md = formatContext('pkg/a.py', 9, {
      target: 'pkg.a.area',
      items: [
        { label: 'imports', kind: 'imports', status: 'included', tokens: 12 },
        { label: 'b.py:3 pkg.b.x | y', kind: 'hit', status: 'dropped', tokens: 80 },
      ],
      notes: ['lexical only'],
      prompt_tokens: 300,
    });
    assert.match(md, /^# CodeForge: context for `pkg.a.area`/);
    assert.match(md, /pkg\/a.py, line 10 — prompt ≈ 300 tokens/);
    assert.match(md, /\| imports \| imports \| included \| 12 \|/);
    assert.match(md, /\| b.py:3 pkg.b.x \\\| y \| hit \| dropped \| 80 \|/);
    assert.match(md, /- lexical only/);
    assert.match(formatContext('a.py', 0, { items: [], notes: [] }), /Nothing would be retrieved/);
  });

  it('lists keys that were unset (the server keeps earlier layers, so the client restarts it)', () => {
    assert.deepStrictEqual(removedKeys({ verify: { trust: 'never', rounds: 1 }, index: { exclude: [] } }, { verify: { rounds: 2 } }), ['verify.trust', 'index.exclude']);
    assert.deepStrictEqual(removedKeys({ verify: { rounds: 1 } }, { verify: { rounds: 2 }, generation: { n: 2 } }), []);
  });
});

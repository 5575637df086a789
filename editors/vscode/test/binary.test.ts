import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { ensureExecutable, findBinary, formatContext, missingBinaryMessage, removedKeys, serverArgs } from '../src/binary';

describe('finding the server binary', () => {
  const exe = (set: string[]) => (p: string) => set.includes(p);
  const bundled = '/ext/codeforge.codeforge-0.1.0-linux-x64/server/codeforge';

  it('uses the setting and nothing else when it is set', () => {
    assert.deepStrictEqual(findBinary('/opt/cf/codeforge', bundled, '/usr/bin', '/home/u', exe(['/opt/cf/codeforge', bundled])), {
      found: '/opt/cf/codeforge',
      source: 'setting',
      tried: ['/opt/cf/codeforge'],
    });
    const r = findBinary('/wrong/codeforge', bundled, '/usr/bin', '/home/u', exe([bundled, '/usr/bin/codeforge']));
    assert.strictEqual(r.found, undefined);
    const m = missingBinaryMessage(r, true);
    assert.match(m, /`codeforge.server.path` is set to \/wrong\/codeforge, which is not an executable file/);
    assert.match(m, /bundled/);
    assert.match(m, /PATH/);
  });

  it('expands ~ in the setting', () => {
    assert.strictEqual(findBinary('~/bin/codeforge', undefined, '', '/home/u', exe(['/home/u/bin/codeforge'])).found, '/home/u/bin/codeforge');
  });

  it('prefers the bundled server to PATH when the setting is empty', () => {
    assert.deepStrictEqual(findBinary('', bundled, '/usr/bin', '/home/u', exe([bundled, '/usr/bin/codeforge'])), {
      found: bundled,
      source: 'bundled',
      tried: [bundled],
      bundled,
    });
    // A bundled file that is not executable: on to PATH.
    const r = findBinary(' ', bundled, '/usr/bin', '/home/u', exe(['/usr/bin/codeforge']));
    assert.strictEqual(r.found, '/usr/bin/codeforge');
    assert.strictEqual(r.source, 'path');
    assert.deepStrictEqual(r.tried, [bundled, '/usr/bin/codeforge']);
  });

  it('searches PATH in order, then ~/.cargo/bin', () => {
    assert.strictEqual(findBinary('', undefined, '/a:/b:/c', '/home/u', exe(['/b/codeforge', '/c/codeforge'])).found, '/b/codeforge');
    const r = findBinary(undefined, undefined, '/a', '/home/u', exe(['/home/u/.cargo/bin/codeforge']));
    assert.deepStrictEqual(r, { found: '/home/u/.cargo/bin/codeforge', source: 'path', tried: ['/a/codeforge', '/home/u/.cargo/bin/codeforge'] });
  });

  it('gives the fix when nothing is found, naming the setting, the bundled server and PATH', () => {
    const r = findBinary('', undefined, '/a:/b', '/home/u', exe([]));
    assert.strictEqual(r.found, undefined);
    const m = missingBinaryMessage(r, false);
    assert.match(m, /language server binary was not found/);
    assert.match(m, /`codeforge\.server\.path` is not set/);
    assert.match(m, /no server is bundled with this installation/);
    assert.match(m, /not on PATH \(looked in 3 places, last \/home\/u\/.cargo\/bin\/codeforge\)/);
    assert.match(m, /platform-specific CodeForge \.vsix/);
    assert.match(m, /cargo install --path server\/cli/);
    assert.match(m, /set `codeforge\.server\.path`/);
    // A bundled server that is there but not executable is named as such, and not counted in PATH.
    const r2 = findBinary('', bundled, '/a', undefined, exe([]));
    const m2 = missingBinaryMessage(r2, false);
    assert.match(m2, /the server bundled with the extension \(\/ext\/codeforge.codeforge-0.1.0-linux-x64\/server\/codeforge\) is not an executable file/);
    assert.match(m2, /looked in 1 places, last \/a\/codeforge/);
  });

  it('makes a bundled server that lost its executable bit executable again', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-bin-test-'));
    try {
      const p = path.join(dir, 'codeforge');
      assert.strictEqual(ensureExecutable(p), 'absent');
      fs.writeFileSync(p, '#!/bin/sh\necho codeforge\n', { mode: 0o644 });
      assert.strictEqual(ensureExecutable(p), 'fixed');
      assert.strictEqual(fs.statSync(p).mode & 0o777, 0o755);
      assert.strictEqual(ensureExecutable(p), 'ok');
      assert.match(ensureExecutable(dir), /is not a file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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

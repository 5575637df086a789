import * as assert from 'assert';

import { StatusModel, verificationOf } from '../src/status';

describe('status bar model', () => {
  it('shows starting, then indexing with its percentage, then indexed', () => {
    const s = new StatusModel();
    assert.match(s.text, /starting/);
    s.setState('running');
    assert.strictEqual(s.text, '$(circle-outline) CodeForge');
    s.progress('t1', { kind: 'begin', title: 'Indexing fixture', percentage: 0 });
    assert.strictEqual(s.text, '$(sync~spin) CodeForge: indexing 0%');
    s.progress('t1', { kind: 'report', percentage: 42.4, message: '3/7 files' });
    assert.strictEqual(s.text, '$(sync~spin) CodeForge: indexing 42%');
    assert.match(s.tooltip, /Indexing fixture 42%: 3\/7 files/);
    s.progress('t1', { kind: 'end', message: '7 files, 12 symbols' });
    assert.strictEqual(s.text, '$(check) CodeForge: indexed');
    assert.match(s.tooltip, /Index: up to date \(7 files, 12 symbols\)/);
  });

  it('shows generation in progress over indexing, then the verification result', () => {
    const s = new StatusModel();
    s.setState('running');
    s.progress('i', { kind: 'begin', title: 'Indexing ws' });
    s.progress('g', { kind: 'begin', title: 'Generating in shapes.py', message: 'starting' });
    s.progress('g', { kind: 'report', message: 'running tests' });
    assert.strictEqual(s.text, '$(loading~spin) CodeForge: generating (running tests)');
    s.progress('g', { kind: 'end', message: 'generated `area` — ✓ 2/2 tests passed (test_area, test_zero) (1 of 1 candidates usable)' });
    s.progress('i', { kind: 'end' });
    assert.strictEqual(s.text, '$(check) CodeForge: indexed · ✓ 2/2 tests passed (test_area, test_zero)');
    assert.match(s.tooltip, /Last verification: ✓ 2\/2 tests passed/);
  });

  it('ignores progress for unknown tokens and clears tasks when the server stops', () => {
    const s = new StatusModel();
    s.setState('running');
    s.progress('x', { kind: 'report', percentage: 50 });
    s.progress('x', { kind: 'end' });
    assert.strictEqual(s.indexed, false);
    s.progress('i', { kind: 'begin', title: 'Indexing ws' });
    s.setState('stopped');
    assert.match(s.text, /stopped/);
    s.setState('running');
    assert.strictEqual(s.text, '$(circle-outline) CodeForge');
  });

  it('takes the verification from a resolved code action title', () => {
    const s = new StatusModel();
    s.setState('running');
    s.resolvedTitle('Generate `area` from its docstring (CodeForge)');
    assert.strictEqual(s.lastVerification, undefined);
    s.resolvedTitle('Generate `area` from its docstring (CodeForge) — ⚠ unverified: running tests is off for this workspace (verify.trust = "never")');
    assert.strictEqual(s.lastVerification, '⚠ unverified: running tests is off for this workspace (verify.trust = "never")');
  });

  it('extracts verification labels', () => {
    assert.strictEqual(verificationOf('nothing shown for `f`: ✗ best candidate fails 1/2 (set verify.show_unverified to see failing candidates)'), '✗ best candidate fails 1/2');
    assert.strictEqual(verificationOf('no usable candidate for `f`: does not parse'), undefined);
  });

  it('says when the binary is missing', () => {
    const s = new StatusModel();
    s.setState('missing');
    assert.strictEqual(s.text, '$(error) CodeForge: server not found');
  });
});

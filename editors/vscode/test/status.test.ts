import * as assert from 'assert';

import { isolationMessage, parseHealth, parseVerdict, StatusModel } from '../src/status';

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

  it('shows generation in progress over indexing, then the typed verdict', () => {
    const s = new StatusModel();
    s.setState('running');
    s.progress('i', { kind: 'begin', title: 'Indexing ws' });
    s.progress('g', { kind: 'begin', title: 'Generating in shapes.py', message: 'starting' });
    s.progress('g', { kind: 'report', message: 'running tests' });
    assert.strictEqual(s.text, '$(loading~spin) CodeForge: generating (running tests)');
    s.progress('g', { kind: 'end', message: 'generated `area` — ✓ 2/2 tests passed (test_area, test_zero) (1 of 1 candidates usable)' });
    s.progress('i', { kind: 'end' });
    // The summary line is not parsed: the verdict comes typed.
    assert.strictEqual(s.text, '$(check) CodeForge: indexed');
    s.verified({ status: 'passed', label: '✓ 2/2 tests passed (test_area, test_zero)', passed: 2, failed: 0, testsFrom: 'workspace', tests: ['test_area', 'test_zero'] });
    assert.strictEqual(s.text, '$(check) CodeForge: indexed · ✓ 2/2 tests passed (test_area, test_zero)');
    assert.strictEqual(s.lastVerificationStatus, 'passed');
    assert.match(s.tooltip, /Last verification: ✓ 2\/2 tests passed/);
  });

  it('shows a disputed verdict (no mark to parse) by its status', () => {
    const s = new StatusModel();
    s.setState('running');
    s.verified({ status: 'disputed', label: '≈ 2/2 tests passed (t), but the 3 passing candidates behave differently on other inputs', passed: 2, failed: 0, testsFrom: 'workspace', tests: ['t'] });
    assert.strictEqual(s.lastVerificationStatus, 'disputed');
    assert.match(s.text, /≈ 2\/2 tests passed/);
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

  it('takes the verdict from a resolved code action\'s data, and ignores what is not one', () => {
    const s = new StatusModel();
    s.setState('running');
    s.verified(undefined);
    s.verified({ status: 'great', label: 'x' });
    assert.strictEqual(s.lastVerification, undefined);
    s.verified({ status: 'unverified', label: '⚠ unverified: running tests is off for this workspace (verify.trust = "never")', passed: 0, failed: 0, testsFrom: 'none', tests: [] });
    assert.strictEqual(s.lastVerification, '⚠ unverified: running tests is off for this workspace (verify.trust = "never")');
    assert.strictEqual(s.lastVerificationStatus, 'unverified');
  });

  it('parses verdicts', () => {
    assert.deepStrictEqual(parseVerdict({ status: 'failed', label: '✗ best candidate fails 1/2', passed: 1, failed: 1, testsFrom: 'workspace', tests: ['a', 3] }), { status: 'failed', label: '✗ best candidate fails 1/2', passed: 1, failed: 1, testsFrom: 'workspace', tests: ['a'] });
    assert.strictEqual(parseVerdict('✓ 1/1'), undefined);
    assert.strictEqual(parseVerdict(null), undefined);
  });

  it('says when the binary is missing', () => {
    const s = new StatusModel();
    s.setState('missing');
    assert.strictEqual(s.text, '$(error) CodeForge: server not found');
  });

  // What `codeforge doctor --json` prints on a machine with everything (the server answers
  // `codeforge/health` with the same object).
  const FULL = {
    sandbox: {
      level: 'full',
      user_namespaces: true,
      landlock_abi: 7,
      seccomp: true,
      missing: [],
      summary:
        'full isolation: user namespace (own mount, pid, network, ipc, uts), read-only system, home and workspace hidden, writable only a scratch copy and a private tmp, no network, Landlock ABI 7, seccomp',
      self_test: 'passed',
    },
  };
  const REDUCED = {
    sandbox: {
      level: 'reduced',
      user_namespaces: false,
      landlock_abi: 4,
      seccomp: true,
      missing: ['user namespaces unavailable: unshare: Operation not permitted'],
      summary:
        'reduced isolation (user namespaces unavailable: unshare: Operation not permitted): Landlock ABI 4 keeps writes in the scratch copy and hides home and workspace, seccomp blocks network sockets; no pid or mount namespace',
      self_test: 'passed',
    },
  };

  it('shows full isolation in the tooltip only, with no message', () => {
    const s = new StatusModel();
    s.setState('running');
    assert.match(s.tooltip, /Test runs: isolation not known yet/);
    const h = parseHealth(FULL);
    assert.ok(h);
    s.sandbox = h;
    s.progress('i', { kind: 'begin', title: 'Indexing ws' });
    s.progress('i', { kind: 'end' });
    assert.strictEqual(s.text, '$(check) CodeForge: indexed');
    assert.match(s.tooltip, /^Test runs: full isolation: user namespace \(own mount, pid, network, ipc, uts\).*Landlock ABI 7, seccomp$/m);
    assert.doesNotMatch(s.tooltip, /self-test failed|verify\.sandbox/);
    assert.strictEqual(isolationMessage(h), undefined);
  });

  it('marks reduced isolation in the text, explains it in the tooltip and in one message', () => {
    const s = new StatusModel();
    s.setState('running');
    const h = parseHealth(REDUCED);
    assert.ok(h);
    s.sandbox = h;
    s.progress('i', { kind: 'begin', title: 'Indexing ws' });
    s.progress('i', { kind: 'end' });
    s.verified({ status: 'unverified', label: '⚠ unverified: below full isolation', passed: 0, failed: 0, testsFrom: 'none', tests: [] });
    // The marker comes last: the e2e flows match "CodeForge: indexed · <label>".
    assert.strictEqual(s.text, '$(check) CodeForge: indexed · ⚠ unverified: below full isolation · $(warning) reduced isolation');
    assert.match(s.tooltip, /^Test runs: reduced isolation \(user namespaces unavailable/m);
    assert.match(s.tooltip, /verify\.sandbox = "reduced"/);
    const msg = isolationMessage(h) ?? '';
    assert.match(msg, /reduced isolation \(user namespaces unavailable: unshare: Operation not permitted\)/);
    assert.match(msg, /will not run below full isolation/);
    assert.match(msg, /verify\.sandbox = "reduced" in ~\/\.config\/codeforge\/config\.toml/);
  });

  it('warns about no isolation and a failed self-test', () => {
    const none = parseHealth({
      sandbox: { level: 'none', user_namespaces: false, landlock_abi: 0, seccomp: false, missing: ['Landlock unavailable', 'seccomp unavailable'], summary: 'no isolation (Landlock unavailable; seccomp unavailable): a test run could read and change anything your account can', self_test: 'passed' },
    });
    assert.ok(none);
    const s = new StatusModel();
    s.setState('running');
    s.sandbox = none;
    assert.strictEqual(s.text, '$(circle-outline) CodeForge · $(warning) no isolation');
    assert.match(isolationMessage(none) ?? '', /no isolation \(Landlock unavailable; seccomp unavailable\).*verify\.sandbox = "none"/);
    const broken = parseHealth({ sandbox: { ...FULL.sandbox, self_test: 'the run wrote into the hidden workspace' } });
    assert.ok(broken);
    s.sandbox = broken;
    assert.strictEqual(s.text, '$(circle-outline) CodeForge · $(warning) sandbox self-test failed');
    assert.match(s.tooltip, /Sandbox self-test failed: the run wrote into the hidden workspace/);
    assert.match(isolationMessage(broken) ?? '', /self-test failed: the run wrote into the hidden workspace/);
  });

  it('refuses results without a known level, and says when the server did not answer', () => {
    assert.strictEqual(parseHealth(null), undefined);
    assert.strictEqual(parseHealth({ sandbox: 'process group, no network, workspace read-only' }), undefined);
    assert.strictEqual(parseHealth({ sandbox: { level: 'partial' } }), undefined);
    const minimal = parseHealth({ sandbox: { level: 'none' } });
    assert.strictEqual(minimal?.summary, 'no isolation');
    assert.deepStrictEqual(minimal?.missing, []);
    const s = new StatusModel();
    s.setState('running');
    s.sandboxError = 'the server did not answer codeforge/health: Unhandled method codeforge/health';
    assert.match(s.tooltip, /Test runs: isolation unknown \(the server did not answer codeforge\/health/);
    assert.strictEqual(s.text, '$(circle-outline) CodeForge');
  });
});

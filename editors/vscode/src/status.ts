// Pure model of the status bar item: `$/progress` sequences from the server (indexing, generating),
// the backend in use, the last verification result and the isolation test runs get on this machine
// (`codeforge/health`). No `vscode` import: unit-tested in node.

export interface ProgressValue {
  kind: 'begin' | 'report' | 'end';
  title?: string;
  message?: string;
  percentage?: number;
}

interface Task {
  title: string;
  message?: string;
  percentage?: number;
}

export type ServerState = 'starting' | 'running' | 'stopped' | 'missing';

export type SandboxLevel = 'full' | 'reduced' | 'none';

/** The `sandbox` object of the `codeforge/health` result (and of `codeforge doctor --json`). */
export interface SandboxHealth {
  level: SandboxLevel;
  user_namespaces: boolean;
  landlock_abi: number;
  seccomp: boolean;
  /** Why a layer is missing (empty at full isolation). */
  missing: string[];
  /** One line: what a test run gets here ("full isolation: …", "reduced isolation (…): …"). */
  summary: string;
  /** "passed", or why the contained self-test run failed. */
  self_test: string;
}

export class StatusModel {
  private tasks = new Map<string, Task>();
  private state: ServerState = 'starting';
  /** Whether an indexing sequence has ended since the server started. */
  indexed = false;
  lastIndexMessage?: string;
  lastVerification?: string;
  /** The last verdict's typed status: passed, disputed, failed or unverified. */
  lastVerificationStatus?: VerdictStatus;
  backend = 'default backend';
  trusted = true;
  /** The isolation test runs get (`codeforge/health`); undefined until the server answers. */
  sandbox?: SandboxHealth;
  /** Set when the server could not say (an older server without `codeforge/health`, an error). */
  sandboxError?: string;

  setState(s: ServerState): void {
    this.state = s;
    if (s !== 'running') this.tasks.clear();
    if (s === 'starting') this.indexed = false;
  }

  /** Feeds one `$/progress` value for `token`. */
  progress(token: string, v: ProgressValue): void {
    if (v.kind === 'begin') {
      this.tasks.set(token, { title: v.title ?? '', message: v.message, percentage: v.percentage });
      return;
    }
    const t = this.tasks.get(token);
    if (!t) return;
    if (v.kind === 'report') {
      if (v.message !== undefined) t.message = v.message;
      if (v.percentage !== undefined) t.percentage = v.percentage;
      return;
    }
    this.tasks.delete(token);
    if (isIndexing(t.title)) {
      this.indexed = true;
      this.lastIndexMessage = v.message ?? t.message;
    }
  }

  /**
   * Records a typed verdict: from the `codeforge/verification` notification, a resolved code
   * action's `data.verification`, or a `codeforge/generate` result. The status decides; the label
   * is only shown.
   */
  verified(v: unknown): void {
    const verdict = parseVerdict(v);
    if (!verdict) return;
    this.lastVerification = verdict.label;
    this.lastVerificationStatus = verdict.status;
  }

  get text(): string {
    switch (this.state) {
      case 'missing':
        return '$(error) CodeForge: server not found';
      case 'stopped':
        return '$(debug-stop) CodeForge: stopped';
      case 'starting':
        return '$(loading~spin) CodeForge: starting';
    }
    const tasks = [...this.tasks.values()];
    const gen = tasks.find((t) => isGenerating(t.title));
    if (gen) return `$(loading~spin) CodeForge: generating${gen.message ? ` (${gen.message})` : ''}`;
    const idx = tasks.find((t) => isIndexing(t.title));
    if (idx) return `$(sync~spin) CodeForge: indexing${idx.percentage !== undefined ? ` ${Math.round(idx.percentage)}%` : ''}`;
    const parts = [this.indexed ? '$(check) CodeForge: indexed' : '$(circle-outline) CodeForge'];
    if (this.lastVerification) parts.push(this.lastVerification);
    const marker = isolationMarker(this.sandbox);
    if (marker) parts.push(marker);
    return parts.join(' · ');
  }

  get tooltip(): string {
    const lines = [
      `CodeForge language server: ${this.state}`,
      `Backend: ${this.backend}`,
      `Index: ${this.indexed ? `up to date${this.lastIndexMessage ? ` (${this.lastIndexMessage})` : ''}` : 'not indexed yet'}`,
      `Last verification: ${this.lastVerification ?? 'none yet'}`,
      this.trusted ? 'Workspace trusted by VS Code: tests may run (per verify.trust)' : 'Restricted mode: tests never run',
      ...isolationLines(this.sandbox, this.sandboxError),
    ];
    for (const t of this.tasks.values()) {
      lines.push(`${t.title}${t.percentage !== undefined ? ` ${Math.round(t.percentage)}%` : ''}${t.message ? `: ${t.message}` : ''}`);
    }
    return lines.join('\n');
  }
}

/** The `sandbox` object of a `codeforge/health` result, or undefined when it has not that shape. */
export function parseHealth(result: unknown): SandboxHealth | undefined {
  const sb = (result as { sandbox?: unknown } | null | undefined)?.sandbox as Record<string, unknown> | undefined;
  if (!sb || typeof sb !== 'object') return undefined;
  const level = sb.level;
  if (level !== 'full' && level !== 'reduced' && level !== 'none') return undefined;
  const missing = Array.isArray(sb.missing) ? sb.missing.filter((m): m is string => typeof m === 'string') : [];
  return {
    level,
    user_namespaces: sb.user_namespaces === true,
    landlock_abi: typeof sb.landlock_abi === 'number' ? sb.landlock_abi : 0,
    seccomp: sb.seccomp === true,
    missing,
    summary: typeof sb.summary === 'string' && sb.summary.trim() !== '' ? sb.summary.trim() : `${level === 'none' ? 'no' : level} isolation`,
    self_test: typeof sb.self_test === 'string' ? sb.self_test : 'not run',
  };
}

function selfTestPassed(h: SandboxHealth): boolean {
  return h.self_test === 'passed';
}

/** The status text's warning part: only when test runs get less than full isolation or the self-test failed. */
export function isolationMarker(h: SandboxHealth | undefined): string | undefined {
  if (!h) return undefined;
  if (h.level === 'reduced') return '$(warning) reduced isolation';
  if (h.level === 'none') return '$(warning) no isolation';
  if (!selfTestPassed(h)) return '$(warning) sandbox self-test failed';
  return undefined;
}

/** The tooltip's lines about the isolation test runs get. */
export function isolationLines(h: SandboxHealth | undefined, error?: string): string[] {
  if (!h) return [error ? `Test runs: isolation unknown (${error})` : 'Test runs: isolation not known yet'];
  const lines = [`Test runs: ${h.summary}`];
  if (!selfTestPassed(h)) lines.push(`Sandbox self-test failed: ${h.self_test}`);
  if (h.level !== 'full') lines.push(`Below full isolation tests run only if your config.toml sets verify.sandbox = "${h.level}"`);
  return lines;
}

/**
 * The one message for the user when test runs would get less than full isolation (or the sandbox's
 * self-test failed); undefined at full isolation with a passing self-test.
 */
export function isolationMessage(h: SandboxHealth): string | undefined {
  const selfTest = selfTestPassed(h) ? '' : ` The sandbox self-test failed: ${h.self_test}.`;
  if (h.level === 'full') {
    return selfTest ? `CodeForge:${selfTest} Test runs may fail; \`codeforge doctor\` says more.` : undefined;
  }
  const what = h.level === 'reduced' ? 'reduced isolation' : 'no isolation';
  const why = h.missing.length > 0 ? ` (${h.missing.join('; ')})` : '';
  return (
    `CodeForge: this machine gives test runs ${what}${why}. Tests will not run below full isolation ` +
    `(generated code stays unverified) unless you set verify.sandbox = "${h.level}" in ~/.config/codeforge/config.toml.${selfTest}`
  );
}

export function isIndexing(title: string): boolean {
  return /^indexing/i.test(title);
}

export function isGenerating(title: string): boolean {
  return /^generating/i.test(title);
}

export type VerdictStatus = 'passed' | 'disputed' | 'failed' | 'unverified';

/** The server's typed verdict (`verification` in results, action data and notifications). */
export interface Verdict {
  status: VerdictStatus;
  label: string;
  passed: number;
  failed: number;
  testsFrom: string;
  tests: string[];
}

const STATUSES: VerdictStatus[] = ['passed', 'disputed', 'failed', 'unverified'];

/** A verdict as the server sends it, or undefined for anything else. */
export function parseVerdict(v: unknown): Verdict | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.status !== 'string' || !STATUSES.includes(o.status as VerdictStatus)) return undefined;
  if (typeof o.label !== 'string') return undefined;
  return {
    status: o.status as VerdictStatus,
    label: o.label,
    passed: typeof o.passed === 'number' ? o.passed : 0,
    failed: typeof o.failed === 'number' ? o.failed : 0,
    testsFrom: typeof o.testsFrom === 'string' ? o.testsFrom : (typeof o.tests_from === 'string' ? o.tests_from : 'none'),
    tests: Array.isArray(o.tests) ? o.tests.filter((t): t is string => typeof t === 'string') : [],
  };
}

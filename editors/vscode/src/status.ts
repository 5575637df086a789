// Pure model of the status bar item: `$/progress` sequences from the server (indexing, generating),
// the backend in use and the last verification result. No `vscode` import: unit-tested in node.

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

export class StatusModel {
  private tasks = new Map<string, Task>();
  private state: ServerState = 'starting';
  /** Whether an indexing sequence has ended since the server started. */
  indexed = false;
  lastIndexMessage?: string;
  lastVerification?: string;
  backend = 'default backend';
  trusted = true;

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
    } else if (isGenerating(t.title)) {
      const result = verificationOf(v.message ?? '');
      if (result) this.lastVerification = result;
    }
  }

  /** Records the title of a resolved code action (it carries the verification result). */
  resolvedTitle(title: string): void {
    const result = verificationOf(title);
    if (result) this.lastVerification = result;
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
    return parts.join(' · ');
  }

  get tooltip(): string {
    const lines = [
      `CodeForge language server: ${this.state}`,
      `Backend: ${this.backend}`,
      `Index: ${this.indexed ? `up to date${this.lastIndexMessage ? ` (${this.lastIndexMessage})` : ''}` : 'not indexed yet'}`,
      `Last verification: ${this.lastVerification ?? 'none yet'}`,
      this.trusted ? 'Workspace trusted by VS Code: tests may run (per verify.trust)' : 'Restricted mode: tests never run',
    ];
    for (const t of this.tasks.values()) {
      lines.push(`${t.title}${t.percentage !== undefined ? ` ${Math.round(t.percentage)}%` : ''}${t.message ? `: ${t.message}` : ''}`);
    }
    return lines.join('\n');
  }
}

export function isIndexing(title: string): boolean {
  return /^indexing/i.test(title);
}

export function isGenerating(title: string): boolean {
  return /^generating/i.test(title);
}

/**
 * The verification part of a generation summary or resolved action title: the server writes
 * "… — ✓ 2/2 tests passed" or "… — ⚠ unverified: no tests were run".
 */
export function verificationOf(text: string): string | undefined {
  const start = text.search(/[✓✗⚠]/u);
  if (start < 0) return undefined;
  return text
    .slice(start)
    .replace(/\s*\(\d+ of \d+ candidates usable\)\s*$/u, '')
    .replace(/\s*\(set verify\.show_unverified to see failing candidates\)\s*$/u, '')
    .trim();
}

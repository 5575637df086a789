// Pure helpers: where the `codeforge` binary is, what to tell the user when it is not there, and
// how to show a `codeforge/context` answer. No `vscode` import: unit-tested in node.

import * as path from 'path';

export interface BinaryLookup {
  /** The binary to run, when one was found. */
  found?: string;
  /** Every place looked at, in order. */
  tried: string[];
}

/**
 * Finds the server binary: the `codeforge.server.path` setting when set (and nothing else: a
 * wrong setting must not be papered over), else `codeforge` on PATH, else `~/.cargo/bin/codeforge`.
 */
export function findBinary(
  setting: string | undefined,
  envPath: string | undefined,
  home: string | undefined,
  isExecutable: (p: string) => boolean,
): BinaryLookup {
  const tried: string[] = [];
  const s = (setting ?? '').trim();
  if (s !== '') {
    const p = home && (s === '~' || s.startsWith('~/')) ? path.join(home, s.slice(1)) : s;
    tried.push(p);
    return isExecutable(p) ? { found: p, tried } : { tried };
  }
  for (const dir of (envPath ?? '').split(path.delimiter).filter((d) => d !== '')) {
    const p = path.join(dir, 'codeforge');
    tried.push(p);
    if (isExecutable(p)) return { found: p, tried };
  }
  if (home) {
    const p = path.join(home, '.cargo', 'bin', 'codeforge');
    tried.push(p);
    if (isExecutable(p)) return { found: p, tried };
  }
  return { tried };
}

/** The message shown when no binary was found, with the fix. */
export function missingBinaryMessage(lookup: BinaryLookup, fromSetting: boolean): string {
  const where = fromSetting
    ? `\`codeforge.server.path\` is set to ${lookup.tried[0]}, which is not an executable file.`
    : `\`codeforge\` is not on PATH${lookup.tried.length ? ` (looked in ${lookup.tried.length} places, last ${lookup.tried[lookup.tried.length - 1]})` : ''}.`;
  return (
    `CodeForge: the language server binary was not found. ${where} ` +
    'Fix: build it from the CodeForge repository (`cargo install --path server/cli`, which puts it in ~/.cargo/bin) ' +
    'or set `codeforge.server.path` to the `codeforge` binary, then run "CodeForge: Restart the language server".'
  );
}

/** Arguments of the server process. */
export function serverArgs(cacheDir: string | undefined): string[] {
  const c = (cacheDir ?? '').trim();
  return c ? ['--cache-dir', c, 'lsp'] : ['lsp'];
}

export interface ContextItem {
  label: string;
  kind: string;
  status: string;
  tokens: number;
}

export interface ContextResult {
  target?: string | null;
  items: ContextItem[];
  notes: string[];
  prompt_tokens?: number;
}

/** A `codeforge/context` answer as a markdown document. */
export function formatContext(file: string, line: number, r: ContextResult): string {
  const out: string[] = [];
  out.push(`# CodeForge: context for ${r.target ? `\`${r.target}\`` : 'the cursor'}`);
  out.push('');
  out.push(`${file}, line ${line + 1}${r.prompt_tokens ? ` — prompt ≈ ${r.prompt_tokens} tokens` : ''}`);
  out.push('');
  if (r.items.length === 0) {
    out.push('Nothing would be retrieved.');
  } else {
    out.push('| what | kind | status | tokens |');
    out.push('|---|---|---|---|');
    for (const i of r.items) {
      out.push(`| ${escapeCell(i.label)} | ${escapeCell(i.kind)} | ${escapeCell(i.status)} | ${i.tokens} |`);
    }
  }
  if (r.notes.length) {
    out.push('');
    for (const n of r.notes) out.push(`- ${n}`);
  }
  out.push('');
  return out.join('\n');
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Keys present in `before` but gone from `after` (section.key): the server keeps such values from
 * earlier layers, so the client restarts the server to drop them. */
export function removedKeys(
  before: Partial<Record<string, Record<string, unknown>>>,
  after: Partial<Record<string, Record<string, unknown>>>,
): string[] {
  const gone: string[] = [];
  for (const [section, values] of Object.entries(before)) {
    for (const key of Object.keys(values ?? {})) {
      if (!after[section] || !(key in after[section]!)) gone.push(`${section}.${key}`);
    }
  }
  return gone;
}

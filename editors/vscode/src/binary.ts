// Helpers: where the `codeforge` binary is (the setting, the server bundled in a platform-specific
// .vsix, PATH), what to tell the user when it is not there, and how to show a `codeforge/context`
// answer. No `vscode` import: unit-tested in node.

import * as fs from 'fs';
import * as path from 'path';

export type BinarySource = 'setting' | 'bundled' | 'path';

export interface BinaryLookup {
  /** The binary to run, when one was found. */
  found?: string;
  /** Where it came from. */
  source?: BinarySource;
  /** Every place looked at, in order. */
  tried: string[];
  /** The bundled server's path when this extension carries one (a platform-specific .vsix). */
  bundled?: string;
}

/**
 * Finds the server binary: the `codeforge.server.path` setting when set (and nothing else: a
 * wrong setting must not be papered over), else the server bundled in a platform-specific .vsix
 * (`server/codeforge` in the extension, when `bundled` exists), else `codeforge` on PATH, else
 * `~/.cargo/bin/codeforge`.
 */
export function findBinary(
  setting: string | undefined,
  bundled: string | undefined,
  envPath: string | undefined,
  home: string | undefined,
  isExecutable: (p: string) => boolean,
): BinaryLookup {
  const tried: string[] = [];
  const s = (setting ?? '').trim();
  if (s !== '') {
    const p = home && (s === '~' || s.startsWith('~/')) ? path.join(home, s.slice(1)) : s;
    tried.push(p);
    return isExecutable(p) ? { found: p, source: 'setting', tried } : { tried };
  }
  if (bundled) {
    tried.push(bundled);
    if (isExecutable(bundled)) return { found: bundled, source: 'bundled', tried, bundled };
  }
  const rest = { tried, ...(bundled ? { bundled } : {}) };
  for (const dir of (envPath ?? '').split(path.delimiter).filter((d) => d !== '')) {
    const p = path.join(dir, 'codeforge');
    tried.push(p);
    if (isExecutable(p)) return { found: p, source: 'path', ...rest };
  }
  if (home) {
    const p = path.join(home, '.cargo', 'bin', 'codeforge');
    tried.push(p);
    if (isExecutable(p)) return { found: p, source: 'path', ...rest };
  }
  return rest;
}

/** The message shown when no binary was found, with the fix: it names all three places. */
export function missingBinaryMessage(lookup: BinaryLookup, fromSetting: boolean): string {
  if (fromSetting) {
    return (
      `CodeForge: the language server binary was not found. \`codeforge.server.path\` is set to ${lookup.tried[0]}, which is not an executable file. ` +
      'Fix: point `codeforge.server.path` at the `codeforge` binary, or clear it to use the server bundled with the extension ' +
      '(the platform-specific .vsix) or `codeforge` on PATH, then run "CodeForge: Restart the language server".'
    );
  }
  const onPath = lookup.tried.filter((p) => p !== lookup.bundled);
  const bundled = lookup.bundled
    ? `the server bundled with the extension (${lookup.bundled}) is not an executable file`
    : 'no server is bundled with this installation of the extension (the universal .vsix carries none)';
  const pathPart = `\`codeforge\` is not on PATH${onPath.length ? ` (looked in ${onPath.length} places, last ${onPath[onPath.length - 1]})` : ''}`;
  return (
    `CodeForge: the language server binary was not found. \`codeforge.server.path\` is not set; ${bundled}; and ${pathPart}. ` +
    'Fix: install the platform-specific CodeForge .vsix (codeforge-linux-x64-VERSION.vsix, which carries the server), ' +
    'or build the server from the CodeForge repository (`cargo install --path server/cli`, which puts it in ~/.cargo/bin), ' +
    'or set `codeforge.server.path` to the `codeforge` binary, then run "CodeForge: Restart the language server".'
  );
}

/**
 * Makes the bundled server executable when the extension's copy lost its executable bit (an
 * installer that drops file modes). 'absent': no bundled server; 'ok': already executable;
 * 'fixed': made executable here; anything else: why it could not be.
 */
export function ensureExecutable(p: string): 'absent' | 'ok' | 'fixed' | string {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 'absent';
  }
  if (!st.isFile()) return `${p} is not a file`;
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return 'ok';
  } catch {
    // not executable: below
  }
  try {
    fs.chmodSync(p, st.mode | 0o111);
    fs.accessSync(p, fs.constants.X_OK);
    return 'fixed';
  } catch (e) {
    return `could not make ${p} executable: ${e instanceof Error ? e.message : String(e)}`;
  }
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

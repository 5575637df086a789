// Pure mapping of VS Code settings (`codeforge.*`) to the server's settings layer, which has the
// shape of codeforge.toml: {index, embeddings, generation, verify}. The server rejects unknown
// keys and later layers override earlier ones key by key, so only settings the user has set are
// sent: an unset VS Code setting leaves codeforge.toml (or the server's default) in effect.
// No `vscode` import here: unit-tested with mocha in plain node.

export type Section = 'index' | 'embeddings' | 'generation' | 'verify';

type Kind = 'string' | 'path' | 'envName' | 'integer' | 'number' | 'boolean' | 'stringArray';

interface Mapping {
  /** VS Code key under `codeforge.` */
  key: string;
  section: Section;
  /** Key in the server's settings (codeforge.toml). */
  server: string;
  kind: Kind;
  /** Allowed values for an enum string. */
  values?: readonly string[];
  min?: number;
  max?: number;
}

export const MAPPINGS: readonly Mapping[] = [
  { key: 'generation.backend', section: 'generation', server: 'backend', kind: 'string', values: ['embedded', 'openai'] },
  { key: 'generation.url', section: 'generation', server: 'url', kind: 'string' },
  { key: 'generation.model', section: 'generation', server: 'model', kind: 'string' },
  { key: 'generation.apiKeyEnv', section: 'generation', server: 'api_key_env', kind: 'envName' },
  { key: 'generation.gguf', section: 'generation', server: 'gguf', kind: 'path' },
  { key: 'generation.n', section: 'generation', server: 'n', kind: 'integer', min: 1, max: 16 },
  { key: 'generation.temperature', section: 'generation', server: 'temperature', kind: 'number', min: 0, max: 2 },
  { key: 'generation.maxTokens', section: 'generation', server: 'max_tokens', kind: 'integer', min: 1 },
  { key: 'embeddings.backend', section: 'embeddings', server: 'backend', kind: 'string', values: ['local', 'openai', 'none'] },
  { key: 'embeddings.url', section: 'embeddings', server: 'url', kind: 'string' },
  { key: 'embeddings.model', section: 'embeddings', server: 'model', kind: 'string' },
  { key: 'embeddings.apiKeyEnv', section: 'embeddings', server: 'api_key_env', kind: 'envName' },
  { key: 'verify.enabled', section: 'verify', server: 'enabled', kind: 'boolean' },
  { key: 'verify.trust', section: 'verify', server: 'trust', kind: 'string', values: ['ask', 'always', 'never'] },
  { key: 'verify.rounds', section: 'verify', server: 'rounds', kind: 'integer', min: 0, max: 10 },
  { key: 'verify.showUnverified', section: 'verify', server: 'show_unverified', kind: 'boolean' },
  { key: 'verify.testTimeoutS', section: 'verify', server: 'test_timeout_s', kind: 'integer', min: 1 },
  { key: 'verify.python', section: 'verify', server: 'python', kind: 'path' },
  { key: 'index.languages', section: 'index', server: 'languages', kind: 'stringArray', values: ['python', 'rust', 'java'] },
  { key: 'index.exclude', section: 'index', server: 'exclude', kind: 'stringArray' },
  { key: 'index.onStartup', section: 'index', server: 'on_startup', kind: 'boolean' },
];

/**
 * Settings that can run a program, load code or weights, or send code or keys elsewhere (a URL,
 * the name of a variable holding a key, the `openai` backends). A workspace's own
 * `.vscode/settings.json` comes with the repository, so in a workspace VS Code does not trust
 * their workspace values are not sent (package.json declares them `restrictedConfigurations` too).
 */
export const RESTRICTED_KEYS: readonly string[] = [
  'server.path',
  'server.cacheDir',
  'generation.backend',
  'generation.url',
  'generation.apiKeyEnv',
  'generation.gguf',
  'embeddings.backend',
  'embeddings.url',
  'embeddings.apiKeyEnv',
  'verify.trust',
  'verify.python',
];

/** The scopes of one setting, as `WorkspaceConfiguration.inspect` reports them. */
export interface Inspected {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value the user set for `codeforge.<key>` (most specific scope first), or undefined when only
 * the default applies. In an untrusted workspace a restricted setting counts only from the
 * user's own (global) settings.
 */
export function effectiveValue(key: string, inspected: Inspected | undefined, trusted: boolean): unknown {
  if (!inspected) return undefined;
  if (!trusted && RESTRICTED_KEYS.includes(key)) return inspected.globalValue;
  return inspected.workspaceFolderValue ?? inspected.workspaceValue ?? inspected.globalValue;
}

export type ServerLayer = Partial<Record<Section, Record<string, unknown>>>;

export interface MappedSettings {
  /** The layer to send (initializationOptions, or `{codeforge: layer}` in didChangeConfiguration). */
  layer: ServerLayer;
  /** Settings that were set but could not be sent, with why (shown to the user). */
  problems: string[];
}

/**
 * Builds the server layer from the settings the user has set.
 * @param get returns the value the user set for `codeforge.<key>`, or undefined when unset.
 * @param trusted whether VS Code trusts the workspace; when not, tests never run (verify.trust = "never").
 * @param expandHome expands a leading `~/` in path settings.
 */
export function toServerLayer(
  get: (key: string) => unknown,
  trusted: boolean,
  expandHome: (p: string) => string = (p) => p,
): MappedSettings {
  const layer: ServerLayer = {};
  const problems: string[] = [];
  const put = (section: Section, key: string, value: unknown) => {
    (layer[section] ??= {})[key] = value;
  };
  for (const m of MAPPINGS) {
    const raw = get(m.key);
    if (raw === undefined || raw === null) continue;
    const checked = check(m, raw);
    if (typeof checked === 'string') {
      problems.push(`codeforge.${m.key}: ${checked}; not sent`);
      continue;
    }
    let value = checked.value;
    if (value === undefined) continue;
    if (m.kind === 'path') value = expandHome(value as string);
    put(m.section, m.server, value);
  }
  if (!trusted) {
    // Restricted mode: nothing from this workspace may run. Overrides any verify.trust set.
    put('verify', 'trust', 'never');
  }
  return { layer, problems };
}

/** `{value}` when the raw setting is valid (normalized), else why not. An empty string counts as unset. */
function check(m: Mapping, raw: unknown): { value: unknown } | string | { value: undefined } {
  switch (m.kind) {
    case 'string':
    case 'path':
    case 'envName': {
      if (typeof raw !== 'string') return `expected a string, got ${JSON.stringify(raw)}`;
      const s = raw.trim();
      if (s === '') return { value: undefined };
      if (m.values && !m.values.includes(s)) return `expected one of ${m.values.join(', ')}, got "${s}"`;
      if (m.kind === 'envName' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) {
        return `expected the NAME of an environment variable (the key itself never goes in a setting), got a value that is not a variable name`;
      }
      return { value: s };
    }
    case 'integer':
    case 'number': {
      if (typeof raw !== 'number' || !Number.isFinite(raw)) return `expected a number, got ${JSON.stringify(raw)}`;
      if (m.kind === 'integer' && !Number.isInteger(raw)) return `expected a whole number, got ${raw}`;
      if (m.min !== undefined && raw < m.min) return `must be at least ${m.min}, got ${raw}`;
      if (m.max !== undefined && raw > m.max) return `must be at most ${m.max}, got ${raw}`;
      return { value: raw };
    }
    case 'boolean':
      if (typeof raw !== 'boolean') return `expected true or false, got ${JSON.stringify(raw)}`;
      return { value: raw };
    case 'stringArray': {
      if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string')) return `expected a list of strings`;
      const bad = m.values ? raw.filter((x) => !m.values!.includes(x)) : [];
      if (bad.length) return `unknown ${bad.join(', ')} (expected ${m.values!.join(', ')})`;
      return { value: [...raw] };
    }
  }
}

/** The didChangeConfiguration payload for a layer. */
export function changeConfigurationParams(layer: ServerLayer): { settings: { codeforge: ServerLayer } } {
  return { settings: { codeforge: layer } };
}

/** Whether a VS Code configuration change concerns the server's settings (vs. client-only ones). */
export function affectsServer(affects: (section: string) => boolean): boolean {
  return MAPPINGS.some((m) => affects(`codeforge.${m.key}`));
}

/** Whether a change needs the server process restarted (binary or cache dir changed). */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects('codeforge.server.path') || affects('codeforge.server.cacheDir');
}

/** A one-word description of the generation backend for the status bar. */
export function backendLabel(layer: ServerLayer): string {
  const g = layer.generation ?? {};
  if (g.backend === 'openai' || (g.backend === undefined && g.url !== undefined)) {
    const model = typeof g.model === 'string' ? g.model : 'openai';
    return `openai:${model}`;
  }
  if (g.backend === 'embedded') return 'embedded';
  return 'default backend';
}

import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import { affectsServer, backendLabel, changeConfigurationParams, MAPPINGS, needsRestart, toServerLayer } from '../src/settings';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const props: Record<string, { type: string; enum?: string[]; items?: { enum?: string[] } }> = pkg.contributes.configuration.properties;

function getter(values: Record<string, unknown>) {
  return (key: string) => values[key];
}

describe('settings → server layer', () => {
  it('sends nothing when nothing is set (codeforge.toml and defaults stay in effect)', () => {
    const { layer, problems } = toServerLayer(getter({}), true);
    assert.deepStrictEqual(layer, {});
    assert.deepStrictEqual(problems, []);
  });

  it('maps every kind of setting to the codeforge.toml shape, only the keys that are set', () => {
    const { layer, problems } = toServerLayer(
      getter({
        'generation.backend': 'openai',
        'generation.url': 'http://127.0.0.1:8000/v1',
        'generation.model': 'Qwen/Qwen2.5-72B-Instruct',
        'generation.apiKeyEnv': 'VLLM_API_KEY',
        'generation.n': 4,
        'generation.maxTokens': 256,
        'embeddings.backend': 'none',
        'verify.enabled': true,
        'verify.trust': 'always',
        'verify.rounds': 3,
        'verify.showUnverified': false,
        'verify.testTimeoutS': 30,
        'index.languages': ['python', 'rust'],
        'index.exclude': ['generated/**'],
      }),
      true,
    );
    assert.deepStrictEqual(problems, []);
    assert.deepStrictEqual(layer, {
      generation: { backend: 'openai', url: 'http://127.0.0.1:8000/v1', model: 'Qwen/Qwen2.5-72B-Instruct', api_key_env: 'VLLM_API_KEY', n: 4, max_tokens: 256 },
      embeddings: { backend: 'none' },
      verify: { enabled: true, trust: 'always', rounds: 3, show_unverified: false, test_timeout_s: 30 },
      index: { languages: ['python', 'rust'], exclude: ['generated/**'] },
    });
  });

  it('forces verify.trust = "never" in a workspace VS Code does not trust, whatever was set', () => {
    const { layer } = toServerLayer(getter({ 'verify.trust': 'always', 'generation.n': 2 }), false);
    assert.deepStrictEqual(layer, { generation: { n: 2 }, verify: { trust: 'never' } });
    assert.deepStrictEqual(toServerLayer(getter({}), false).layer, { verify: { trust: 'never' } });
  });

  it('refuses bad values with a message instead of sending them (the server would ignore the whole layer)', () => {
    const { layer, problems } = toServerLayer(
      getter({
        'generation.backend': 'gpt',
        'generation.n': 1.5,
        'verify.rounds': -1,
        'verify.enabled': 'yes',
        'generation.apiKeyEnv': 'sk-abc123secret',
        'index.languages': ['python', 'cobol'],
        'generation.url': '   ',
        'generation.model': 'm',
      }),
      true,
    );
    assert.deepStrictEqual(layer, { generation: { model: 'm' } });
    assert.strictEqual(problems.length, 6, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('codeforge.generation.backend: expected one of embedded, openai')));
    assert.ok(problems.some((p) => p.startsWith('codeforge.generation.n: expected a whole number')));
    assert.ok(problems.some((p) => p.startsWith('codeforge.verify.rounds: must be at least 0')));
    // A key pasted where the variable NAME goes is never echoed back.
    const key = problems.find((p) => p.startsWith('codeforge.generation.apiKeyEnv'));
    assert.ok(key && !key.includes('sk-abc123secret'), key);
    assert.ok(problems.some((p) => p.includes('unknown cobol')));
  });

  it('expands ~ in path settings only', () => {
    const { layer } = toServerLayer(getter({ 'generation.gguf': '~/m.gguf', 'generation.model': '~/x' }), true, (p) => p.replace(/^~/, '/home/u'));
    assert.deepStrictEqual(layer, { generation: { gguf: '/home/u/m.gguf', model: '~/x' } });
  });

  it('wraps didChangeConfiguration as {settings: {codeforge: layer}}', () => {
    assert.deepStrictEqual(changeConfigurationParams({ verify: { rounds: 1 } }), { settings: { codeforge: { verify: { rounds: 1 } } } });
  });

  it('tells server settings from client-only ones', () => {
    assert.strictEqual(affectsServer((s) => s === 'codeforge.verify.rounds'), true);
    assert.strictEqual(affectsServer((s) => s === 'codeforge.inlineCompletion.enabled'), false);
    assert.strictEqual(needsRestart((s) => s === 'codeforge.server.path'), true);
    assert.strictEqual(needsRestart((s) => s === 'codeforge.verify.rounds'), false);
  });

  it('labels the backend', () => {
    assert.strictEqual(backendLabel({ generation: { backend: 'openai', model: 'x' } }), 'openai:x');
    assert.strictEqual(backendLabel({ generation: { backend: 'embedded' } }), 'embedded');
    assert.strictEqual(backendLabel({}), 'default backend');
  });
});

describe('package.json agrees with the mapping', () => {
  const clientOnly = ['server.path', 'server.cacheDir', 'inlineCompletion.enabled', 'trace.server'];

  it('declares every mapped setting, with the same allowed values', () => {
    for (const m of MAPPINGS) {
      const p = props[`codeforge.${m.key}`];
      assert.ok(p, `codeforge.${m.key} missing from package.json`);
      const declared = p.enum ?? p.items?.enum;
      if (m.values) assert.deepStrictEqual(declared, [...m.values], `codeforge.${m.key} enum`);
      assert.ok(!('default' in p), `codeforge.${m.key} has a default: it would look set to users though it is not sent`);
    }
  });

  it('maps or knows every declared setting', () => {
    for (const k of Object.keys(props)) {
      const short = k.replace(/^codeforge\./, '');
      assert.ok(MAPPINGS.some((m) => m.key === short) || clientOnly.includes(short), `${k} is declared but neither mapped nor client-only`);
    }
  });

  it('declares limited support for untrusted workspaces, restricting the settings that point at executables', () => {
    assert.strictEqual(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    for (const k of ['codeforge.server.path', 'codeforge.verify.python', 'codeforge.verify.trust']) {
      assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes(k), k);
    }
  });
});

describe('the mapping agrees with the server (server/config/src/lib.rs)', () => {
  const rust = fs.readFileSync(path.resolve(root, '..', '..', 'server', 'config', 'src', 'lib.rs'), 'utf8');
  const fields = (struct: string): string[] => {
    const m = new RegExp(`pub struct ${struct} \\{([\\s\\S]*?)\\n\\}`).exec(rust);
    assert.ok(m, `struct ${struct} not found`);
    return [...m[1].matchAll(/pub (\w+):/g)].map((x) => x[1]);
  };
  const structs: Record<string, string> = { index: 'IndexLayer', embeddings: 'EmbeddingsLayer', generation: 'GenerationLayer', verify: 'VerifyLayer' };

  it('sends only keys the server accepts (it rejects a layer with unknown keys)', () => {
    for (const m of MAPPINGS) {
      assert.ok(fields(structs[m.section]).includes(m.server), `${m.section}.${m.server} is not a field of ${structs[m.section]}`);
    }
  });
});

import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import { effectiveValue, MAPPINGS, RESTRICTED_KEYS, toServerLayer } from '../src/settings';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

describe('a workspace VS Code does not trust', () => {
  it('does not send its own values of settings that run programs or send data elsewhere', () => {
    const scopes = {
      'generation.url': { globalValue: 'http://mine:8000/v1', workspaceValue: 'https://evil.example/v1' },
      'embeddings.apiKeyEnv': { workspaceValue: 'GITHUB_TOKEN' },
      'verify.python': { workspaceFolderValue: './evil' },
      'generation.n': { workspaceValue: 3 },
    } as Record<string, { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown }>;
    const get = (trusted: boolean) => (key: string) => effectiveValue(key, scopes[key], trusted);
    const untrusted = toServerLayer(get(false), false).layer;
    assert.deepStrictEqual(untrusted, {
      generation: { url: 'http://mine:8000/v1', n: 3 },
      verify: { trust: 'never' },
    });
    const trusted = toServerLayer(get(true), true).layer;
    assert.deepStrictEqual(trusted, {
      generation: { url: 'https://evil.example/v1', n: 3 },
      embeddings: { api_key_env: 'GITHUB_TOKEN' },
      verify: { python: './evil' },
    });
    assert.strictEqual(effectiveValue('generation.url', undefined, false), undefined);
  });

  it('restricts every setting naming a program, a path, a URL, a variable or the openai backends, in package.json too', () => {
    const declared: string[] = pkg.capabilities.untrustedWorkspaces.restrictedConfigurations;
    for (const m of MAPPINGS) {
      const risky = m.kind === 'path' || m.kind === 'envName' || m.server === 'url' || m.server === 'backend' || m.server === 'trust';
      if (risky) assert.ok(RESTRICTED_KEYS.includes(m.key), `${m.key} is not restricted`);
    }
    for (const k of RESTRICTED_KEYS) assert.ok(declared.includes(`codeforge.${k}`), `package.json does not restrict codeforge.${k}`);
  });
});

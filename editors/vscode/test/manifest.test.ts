import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

// package.json as VS Code and vsce read it: the commands the extension registers, the keybinding,
// the bundle, the licence and the icon.
const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const extensionTs = fs.readFileSync(path.join(root, 'src', 'extension.ts'), 'utf8');

describe('package.json: what the extension contributes and ships', () => {
  it('declares exactly the commands extension.ts registers, Download models among them', () => {
    const registered = [...extensionTs.matchAll(/registerCommand\('([^']+)'/g)].map((m) => m[1]).sort();
    const declared = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepStrictEqual(declared, registered);
    const dl = pkg.contributes.commands.find((c: { command: string }) => c.command === 'codeforge.downloadModels');
    assert.deepStrictEqual([dl.category, dl.title], ['CodeForge', 'Download models']);
  });

  it('binds generate-at-cursor to Ctrl+Alt+G (Cmd+Alt+G on macOS) in Python, Rust and Java editors', () => {
    const kb = pkg.contributes.keybindings.find((k: { command: string }) => k.command === 'codeforge.generateAtCursor');
    assert.strictEqual(kb.key, 'ctrl+alt+g');
    assert.strictEqual(kb.mac, 'cmd+alt+g');
    assert.match(kb.when, /editorTextFocus/);
    const m = /editorLangId =~ \/(.+)\//.exec(kb.when);
    assert.ok(m, kb.when);
    const re = new RegExp(m[1]);
    for (const lang of ['python', 'rust', 'java']) assert.ok(re.test(lang), lang);
    for (const lang of ['markdown', 'javascript', 'pythonx']) assert.ok(!re.test(lang), lang);
  });

  it('runs the esbuild bundle, and vsce builds it before packaging', () => {
    assert.strictEqual(pkg.main, './dist/extension.js');
    assert.match(pkg.scripts['vscode:prepublish'], /bundle/);
    assert.match(pkg.scripts.bundle, /esbuild src\/extension\.ts --bundle --outfile=dist\/extension\.js --external:vscode/);
    const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8').split('\n');
    for (const keep of ['!dist/extension.js', '!LICENSE', `!${pkg.icon}`, '!server/codeforge', '!README.md', '!package.json']) {
      assert.ok(ignore.includes(keep), `.vscodeignore does not keep ${keep}`);
    }
    assert.ok(!ignore.some((l) => l.startsWith('!node_modules') || l.startsWith('!out')), '.vscodeignore ships node_modules or tsc output');
  });

  it('has the workspace licence, a repository and a 128x128 PNG icon', () => {
    assert.strictEqual(pkg.license, 'Apache-2.0');
    assert.match(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/);
    assert.deepStrictEqual(pkg.repository, { type: 'git', url: 'https://github.com/codeforge-dev/codeforge', directory: 'editors/vscode' });
    const png = fs.readFileSync(path.join(root, pkg.icon));
    assert.strictEqual(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
    assert.strictEqual(png.subarray(12, 16).toString('ascii'), 'IHDR');
    assert.deepStrictEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [128, 128]);
  });
});

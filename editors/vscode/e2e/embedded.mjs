// The one VS Code flow whose model output is real: Ctrl+. → "Generate `rectangle_area` from its
// docstring (CodeForge)" with the embedded model (Qwen2.5-Coder-0.5B GGUF, the default backend: no
// codeforge.generation.backend is set), in code-server 4.100.3 driven by Debian's chromium through
// playwright-core, against the real `codeforge lsp`. No scripted model server.
//
//   node e2e/embedded.mjs --vsix codeforge.vsix --bin /path/to/codeforge --python /venv/bin/python \
//        [--models ~/.cache/codeforge/models] [--artifacts DIR]
//
// Settings: codeforge.generation.maxTokens 160, embeddings off, verify.trust "always",
// verify.rounds 0, verify.showUnverified (a failing answer is applied too, labelled ✗); the workspace's codeforge.toml adds generation.plan = "off" and
// generation.context_hits = 0 (no extension settings for them): no retrieved snippets in the
// prompt, with which the 0.5B model (greedy, the same answer every run) rewrites a neighbour
// instead, which the server refuses. The models directory is linked into a fresh cache dir, so the server finds the
// default model where it looks by default. Checks: the .vsix installs; indexing finishes; Ctrl+.
// offers the action; choosing it replaces the stub body in the editor; Ctrl+S writes a body that
// is not a stub (`...`, `pass`, `raise NotImplementedError`) to disk; the status bar shows a
// verification label (✓, ≈, ⚠ or ✗). Not whether the model got the function right. One CPU
// generation takes seconds on 2 cores (30–90 s on candle's kernels); it gets 300 s, the whole run 400 s.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { arg, freePort, harness } from './harness.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const here = path.dirname(fileURLToPath(import.meta.url));
const testkit = path.resolve(here, '..', '..', 'testkit');

const vsix = path.resolve(arg('vsix'));
const bin = path.resolve(arg('bin'));
const python = arg('python');
const models = path.resolve(arg('models', path.join(os.homedir(), '.cache', 'codeforge', 'models')));
const artifacts = path.resolve(arg('artifacts', path.resolve(here, '..', 'test-artifacts', 'e2e-embedded')));
const chromiumPath = arg('chromium', '/usr/bin/chromium');
const codeServer = path.join(here, 'node_modules', '.bin', 'code-server');
const FLOW_MS = 300000; // the generation (Ctrl+. → body in the editor)
const TOTAL_MS = 400000; // everything, code-server's start and the verification included
const h = harness({ artifacts, totalMs: TOTAL_MS });
const { log, check, start, killAll, waitFor, screenshot } = h;

let tmp;

const STUBS = new Set(['...', 'pass', 'raise NotImplementedError', 'raise NotImplementedError()']);

/** The code lines of rectangle_area's body: no docstring, blank lines or comments. */
function bodyOf(text) {
  const lines = text.replace(/\u00a0/g, ' ').split('\n');
  let i = lines.findIndex((l) => /^def rectangle_area\(/.test(l));
  if (i < 0) return undefined;
  while (i < lines.length && !/:\s*$/.test(lines[i])) i++;
  let j = i + 1;
  while (j < lines.length && /^\s*$/.test(lines[j])) j++;
  const q = /^\s+("""|''')/.exec(lines[j] || '');
  if (q) {
    const rest = lines[j].trim().slice(3);
    if (!rest.includes(q[1])) {
      j++;
      while (j < lines.length && !lines[j].includes(q[1])) j++;
    }
    i = j;
  }
  const code = [];
  for (let k = i + 1; k < lines.length; k++) {
    if (/^\S/.test(lines[k])) break;
    const s = lines[k].trim();
    if (s && !s.startsWith('#')) code.push(s);
  }
  return code;
}
const isStub = (code) => !code || code.every((s) => STUBS.has(s));

async function main() {
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const gguf = path.join(models, 'qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-0.5b-instruct.gguf');
  if (!check(fs.existsSync(gguf), 'the embedded model is installed', gguf)) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-vscode-embedded-'));
  const ws = path.join(tmp, 'ws');
  fs.cpSync(path.join(testkit, 'fixture'), ws, { recursive: true });
  // generation.plan and context_hits have no extension settings: the workspace's codeforge.toml.
  fs.writeFileSync(path.join(ws, 'codeforge.toml'), '[generation]\nplan = "off"\ncontext_hits = 0\n');
  const dirs = ['user-data', 'extensions', 'cache', 'config', 'data'].map((d) => path.join(tmp, d));
  for (const d of dirs) fs.mkdirSync(d, { recursive: true });
  const [userData, extensions, cache, config, data] = dirs;
  fs.symlinkSync(models, path.join(cache, 'models'));
  const env = { ...process.env, XDG_CONFIG_HOME: config, XDG_DATA_HOME: data, CODEFORGE_LOG: 'warn' };
  delete env.VSCODE_IPC_HOOK_CLI;
  const file = path.join(ws, 'shapes.py');
  check(isStub(bodyOf(fs.readFileSync(file, 'utf8'))), 'the fixture\'s rectangle_area is a stub');

  const inst = spawnSync(codeServer, ['--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', vsix], {
    env,
    encoding: 'utf8',
    timeout: 120000,
  });
  fs.writeFileSync(path.join(artifacts, 'install.log'), `${inst.stdout}\n${inst.stderr}`);
  const installed = fs.readdirSync(extensions).find((d) => d.startsWith('codeforge.codeforge-'));
  if (!check(inst.status === 0 && installed, 'code-server installs the .vsix', `${inst.status} ${inst.stderr}`)) return;

  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  const settings = {
    'codeforge.server.path': bin,
    'codeforge.server.cacheDir': cache,
    // no codeforge.generation.backend: the default, the embedded model
    'codeforge.generation.maxTokens': 160,
    'codeforge.embeddings.backend': 'none',
    'codeforge.verify.trust': 'always',
    'codeforge.verify.python': python,
    'codeforge.verify.rounds': 0,
    // a failing answer is still applied (✗): the flow is about the editor path, not the model
    'codeforge.verify.showUnverified': true,
    'codeforge.inlineCompletion.enabled': false,
    'codeforge.trace.server': 'messages',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'files.autoSave': 'off',
    'editor.lightbulb.enabled': 'off',
    'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
    'chat.commandCenter.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
  };
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));

  const port = await freePort();
  start(
    codeServer,
    [
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir', userData,
      '--extensions-dir', extensions,
      ws,
    ],
    { env },
    path.join(artifacts, 'code-server.log'),
  );
  const up = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    return r && r.ok;
  }, 60000, 'code-server answers on 127.0.0.1');
  if (!up) return;
  check(true, 'code-server answers on 127.0.0.1');

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (e) => fs.appendFileSync(path.join(artifacts, 'page-errors.log'), `${e}\n`));
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
    const wb = await waitFor(() => page.locator('.monaco-workbench .part.editor').count(), 60000, 'the workbench loads');
    if (!wb) return;
    await page.waitForTimeout(1500);

    // Open the fixture with Quick Open.
    await page.locator('.monaco-workbench').click({ position: { x: 700, y: 450 } }).catch(() => {});
    await page.keyboard.press('Control+P');
    if (!(await waitFor(() => page.locator('.quick-input-widget input').isVisible(), 15000, 'Quick Open appears'))) return;
    await page.keyboard.type('shapes.py');
    await waitFor(() => page.locator('.quick-input-list .monaco-list-row').first().isVisible(), 15000, 'Quick Open finds shapes.py');
    await page.keyboard.press('Enter');
    const editor = page.locator('.editor-instance .monaco-editor .view-lines').first();
    if (!(await waitFor(async () => (await editor.innerText()).includes('rectangle_area'), 20000, 'shapes.py opens in the editor'))) return;
    check(true, 'shapes.py opens in the editor');

    // The editor's lines in order (Monaco positions its line elements, their DOM order may differ).
    const editorText = () =>
      editor.evaluate((el) =>
        Array.from(el.querySelectorAll('.view-line'))
          .sort((x, y) => parseFloat(x.style.top) - parseFloat(y.style.top))
          .map((l) => l.textContent)
          .join('\n'),
      );
    const status = page.locator('#workbench\\.parts\\.statusbar');
    const statusText = async () => (await status.innerText()).replace(/\s+/g, ' ');
    const indexed = await waitFor(async () => {
      const t = await statusText();
      if (/CodeForge: (server not found|stopped)/.test(t)) return 'server failed';
      return t.includes('CodeForge: indexed');
    }, 90000, 'the status bar shows indexing finished');
    await screenshot(page, 'indexed');
    if (indexed !== true) {
      if (indexed) check(false, 'the status bar shows indexing finished', await statusText());
      return;
    }
    check(true, 'the status bar shows indexing finished ("CodeForge: indexed")');

    // Ctrl+. on the stub's line, the CodeForge action.
    await page.keyboard.press('Control+G');
    await waitFor(() => page.locator('.quick-input-widget input').isVisible(), 10000, 'Go to Line appears');
    await page.keyboard.type('6');
    await page.keyboard.press('Enter');
    await page.waitForTimeout(500);
    const title = 'Generate `rectangle_area` from its docstring (CodeForge)';
    let menu;
    for (let attempt = 0; attempt < 3 && !menu; attempt++) {
      await page.keyboard.press('Control+.');
      menu = await waitFor(async () => {
        const texts = await page.locator('.action-widget .monaco-list-row, .context-view .action-item').allInnerTexts();
        return texts.some((t) => t.includes(title)) && texts;
      }, 15000, null);
      if (!menu) await page.keyboard.press('Escape');
    }
    await screenshot(page, 'ctrl-dot-menu');
    if (!check(menu, 'Ctrl+. offers the CodeForge action', 'not in the menu after 3 tries')) return;
    for (let i = 0; i < 6; i++) {
      const focused = await page.locator('.action-widget .monaco-list-row.focused').first().getAttribute('aria-label').catch(() => null);
      if (focused && focused.includes(title)) break;
      await page.keyboard.press('ArrowDown');
      await page.waitForTimeout(150);
    }
    const genStart = Date.now();
    await page.keyboard.press('Enter');
    // The model runs in codeAction/resolve; the edit replaces the stub's body in the editor. The
    // editor renders only what fits, which is enough here (the function is at the top).
    // An error (no usable candidate) shows as a notification: stop waiting then.
    const failedToast = async () =>
      (await page.locator('.notifications-toasts .notification-toast').allInnerTexts()).find((t) => /no usable candidate|request .* failed|could not be applied/i.test(t));
    const inEditor = await waitFor(async () => (await failedToast()) || !isStub(bodyOf(await editorText())), FLOW_MS, 'the embedded model\'s body replaces the stub in the editor');
    await screenshot(page, 'generated');
    if (typeof inEditor === 'string') {
      check(false, 'the embedded model\'s body replaces the stub in the editor', `a notification: ${inEditor}`);
      return;
    }
    if (!inEditor) {
      log(`  status bar: ${await statusText()}`);
      return;
    }
    check(true, `the embedded model's body replaces the stub in the editor (${((Date.now() - genStart) / 1000).toFixed(0)} s after choosing the action)`);

    await page.keyboard.press('Control+S');
    const saved = await waitFor(() => !isStub(bodyOf(fs.readFileSync(file, 'utf8'))), 15000, 'Ctrl+S writes a non-stub body to disk');
    const disk = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(path.join(artifacts, 'shapes.py.after'), disk);
    if (saved) check(true, `Ctrl+S writes a non-stub body to disk: ${bodyOf(disk).join(' | ')}`);

    const label = /CodeForge: indexed · (✓|≈|⚠|✗)/;
    const verified = await waitFor(async () => label.test(await statusText()), 60000, 'the status bar shows a verification label');
    await screenshot(page, 'verified');
    if (verified) check(true, `the status bar shows a verification label (${await statusText()})`);
  } finally {
    await browser.close().catch(() => {});
  }
}

const watchdog = setTimeout(() => {
  check(false, `watchdog: the embedded run did not finish in ${TOTAL_MS / 1000 + 20} s`);
  killAll();
  process.exit(3);
}, TOTAL_MS + 20000);

try {
  await main();
} catch (e) {
  check(false, 'uncaught error', e && e.stack);
} finally {
  clearTimeout(watchdog);
  killAll();
  if (tmp) {
    try {
      let n = 0;
      for (const f of fs.readdirSync(path.join(tmp, 'user-data', 'logs'), { recursive: true }).map(String).sort()) {
        if (f.endsWith('CodeForge.log')) fs.copyFileSync(path.join(tmp, 'user-data', 'logs', f), path.join(artifacts, `CodeForge-${++n}.log`));
      }
    } catch {
      // no logs
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
log(`vscode embedded: ${h.results.length} checks, ${h.failures()} failed, ${((Date.now() - h.t0) / 1000).toFixed(0)} s (screenshots in ${artifacts})`);
process.exit(h.failures() === 0 && h.results.length > 0 ? 0 : 1);

// Shared by the VS Code end-to-end flows (run.mjs, embedded.mjs): command-line arguments, logged
// checks, child processes started in their own group and killed together, polling with a
// deadline (capped by the whole run's), and numbered screenshots.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** The value after `--name`, else `def`; without a default a missing one throws. */
export function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  if (def !== undefined) return def;
  throw new Error(`missing --${name}`);
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** One run's state: its checks, children and screenshots (into `artifacts`). */
export function harness({ artifacts, totalMs = Infinity }) {
  const t0 = Date.now();
  const children = [];
  const results = [];
  let failures = 0;
  let shot = 0;

  function log(msg) {
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
  }
  function check(cond, what, detail) {
    results.push([!!cond, what]);
    if (cond) log(`  ok   ${what}`);
    else {
      failures++;
      log(`  FAIL ${what}${detail !== undefined ? `: ${String(detail).slice(0, 2000)}` : ''}`);
    }
    return !!cond;
  }
  function start(cmd, args, opts, logFile) {
    const out = fs.openSync(logFile, 'a');
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', out, out], detached: true });
    children.push(p);
    return p;
  }
  function killAll() {
    for (const p of children) {
      try {
        process.kill(-p.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
  }
  async function waitFor(fn, ms, what) {
    const end = Date.now() + Math.min(ms, Math.max(1000, totalMs - (Date.now() - t0)));
    let last;
    while (Date.now() < end) {
      try {
        last = await fn();
        if (last) return last;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (what) check(false, what, `timed out after ${ms} ms${last ? ` (last: ${last})` : ''}`);
    return undefined;
  }
  async function screenshot(page, name) {
    shot++;
    const file = path.join(artifacts, `${String(shot).padStart(2, '0')}-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.png`);
    try {
      await page.screenshot({ path: file });
    } catch (e) {
      log(`  (screenshot ${name} failed: ${e})`);
    }
  }
  return {
    t0,
    results,
    failures: () => failures,
    log,
    check,
    start,
    killAll,
    waitFor,
    screenshot,
  };
}

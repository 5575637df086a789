// The CodeForge extension: starts `codeforge lsp` with vscode-languageclient, maps settings to the
// server's layer (initializationOptions + workspace/didChangeConfiguration), shows indexing,
// backend, verification and the isolation test runs get (`codeforge/health`) in the status bar, and
// adds the CodeForge commands. Code actions,
// completion and inline completion (LSP 3.18 textDocument/inlineCompletion) come from the client's
// built-in features.

import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  StaticFeature,
  State,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  DidChangeConfigurationNotification,
  FeatureState,
  WorkspaceEdit,
} from 'vscode-languageclient/node';

import { ensureExecutable, findBinary, formatContext, missingBinaryMessage, removedKeys, serverArgs, ContextResult } from './binary';
import { PULL_MODELS_COMMAND, pullModelsNotice } from './models';
import { affectsServer, backendLabel, changeConfigurationParams, effectiveValue, needsRestart, ServerLayer, toServerLayer } from './settings';
import { isolationMessage, parseHealth, StatusModel } from './status';

let client: LanguageClient | undefined;
let sentLayer: ServerLayer = {};
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
const status = new StatusModel();
/** The isolation message last shown, so a restart does not repeat it. */
let shownIsolationMessage: string | undefined;

interface GenerateResult {
  status: string;
  code?: string | null;
  edit?: WorkspaceEdit | null;
  message: string;
  verification?: { status: string; label: string; passed: number; failed: number } | null;
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('codeforge');
}

/**
 * The value the user set (any scope), or undefined when only the default applies. In a workspace
 * VS Code does not trust, the repository's own values of settings that can run a program or send
 * code or keys elsewhere are left out (`inspect` reports them even in Restricted Mode).
 */
function userValue(key: string): unknown {
  return effectiveValue(key, config().inspect(key), vscode.workspace.isTrusted);
}

function currentLayer(): ServerLayer {
  const { layer, problems } = toServerLayer(userValue, vscode.workspace.isTrusted, expandHome);
  for (const p of problems) {
    output.appendLine(p);
    void vscode.window.showWarningMessage(`CodeForge: ${p}`);
  }
  return layer;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? os.homedir() + p.slice(1) : p;
}

function isExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function refreshStatus(): void {
  statusItem.text = status.text;
  statusItem.tooltip = status.tooltip;
}

/** Replaces the default `window/workDoneProgress/create` handler: progress goes to the status bar. */
class StatusProgressFeature implements StaticFeature {
  private handlers: vscode.Disposable[] = [];
  constructor(private readonly lc: LanguageClient) {}
  getState(): FeatureState {
    return { kind: 'static' };
  }
  fillClientCapabilities(capabilities: { window?: { workDoneProgress?: boolean } }): void {
    (capabilities.window ??= {}).workDoneProgress = true;
  }
  initialize(): void {
    this.lc.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      const token = String(params.token);
      const d = this.lc.onProgress(WorkDoneProgress.type, params.token, (value) => {
        status.progress(token, value);
        refreshStatus();
        if (value.kind === 'end') {
          d.dispose();
          if (value.message && /^Generating/i.test(value.message) === false) output.appendLine(`progress ${token}: ${value.message}`);
        }
      });
      this.handlers.push(d);
    });
  }
  clear(): void {
    for (const d of this.handlers) d.dispose();
    this.handlers = [];
  }
}

/**
 * The server inside a platform-specific .vsix (`server/codeforge`), made executable when the
 * installed copy lost its executable bit; undefined when this extension carries none.
 */
function bundledServer(context: vscode.ExtensionContext): string | undefined {
  const p = context.asAbsolutePath('server/codeforge');
  const r = ensureExecutable(p);
  if (r === 'absent') return undefined;
  if (r === 'fixed') output.appendLine(`made the bundled server executable: ${p}`);
  else if (r !== 'ok') output.appendLine(r);
  return p;
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const setting = config().get<string>('server.path') ?? '';
  const lookup = findBinary(setting, bundledServer(context), process.env.PATH, os.homedir(), isExecutable);
  status.backend = backendLabel(currentLayer());
  status.trusted = vscode.workspace.isTrusted;
  if (!lookup.found) {
    status.setState('missing');
    refreshStatus();
    const msg = missingBinaryMessage(lookup, setting.trim() !== '');
    output.appendLine(msg);
    const choice = await vscode.window.showErrorMessage(msg, 'Open Settings');
    if (choice === 'Open Settings') {
      void vscode.commands.executeCommand('workbench.action.openSettings', 'codeforge.server.path');
    }
    return;
  }
  output.appendLine(`server: ${lookup.found} (${lookup.source === 'setting' ? 'codeforge.server.path' : lookup.source === 'bundled' ? 'bundled with the extension' : 'PATH'})`);
  const serverOptions: ServerOptions = {
    command: lookup.found,
    // No `transport`: TransportKind.stdio would append `--stdio`, which `codeforge lsp` refuses.
    args: serverArgs(config().get<string>('server.cacheDir')),
  };
  sentLayer = currentLayer();
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'file', language: 'rust' },
      { scheme: 'file', language: 'java' },
    ],
    initializationOptions: sentLayer,
    outputChannel: output,
    middleware: {
      resolveCodeAction: async (item, token, next) => {
        // The verdict itself arrives typed, as codeforge/verification (below).
        const resolved = await next(item, token);
        if (resolved?.title) output.appendLine(`generated: ${resolved.title}`);
        return resolved;
      },
      provideInlineCompletionItems: (document, position, ctx, token, next) => {
        if (!config().get<boolean>('inlineCompletion.enabled', true)) return null;
        return next(document, position, ctx, token);
      },
    },
  };
  const lc = new LanguageClient('codeforge', 'CodeForge', serverOptions, clientOptions);
  lc.registerFeature(new StatusProgressFeature(lc));
  lc.onDidChangeState((e) => {
    if (e.newState === State.Running) status.setState('running');
    else if (e.newState === State.Starting) status.setState('starting');
    else status.setState('stopped');
    refreshStatus();
  });
  // The typed verdict of every generation (code action, command, codeforge/generate).
  lc.onNotification('codeforge/verification', (p: { verification?: unknown }) => {
    status.verified(p?.verification);
    refreshStatus();
  });
  client = lc;
  status.setState('starting');
  refreshStatus();
  try {
    await lc.start();
    void checkHealth(lc);
  } catch (e) {
    status.setState('stopped');
    refreshStatus();
    void vscode.window.showErrorMessage(`CodeForge: the language server did not start: ${e instanceof Error ? e.message : String(e)}`);
  }
  context.subscriptions.push({ dispose: () => void lc.stop() });
}

/**
 * Asks the server once per start which isolation test runs get here (`codeforge/health`, which
 * also runs one contained self-test): into the status bar's tooltip, a warning marker in its text
 * below full isolation, and one message saying what that means for verification.
 */
async function checkHealth(lc: LanguageClient): Promise<void> {
  let result: unknown;
  try {
    result = await lc.sendRequest('codeforge/health', {});
  } catch (e) {
    if (client !== lc) return;
    status.sandbox = undefined;
    status.sandboxError = `the server did not answer codeforge/health: ${e instanceof Error ? e.message : String(e)}`;
    output.appendLine(status.sandboxError);
    refreshStatus();
    return;
  }
  if (client !== lc) return;
  const health = parseHealth(result);
  status.sandbox = health;
  status.sandboxError = health ? undefined : 'unexpected codeforge/health result';
  refreshStatus();
  if (!health) {
    output.appendLine(`codeforge/health: unexpected result ${JSON.stringify(result)}`);
    return;
  }
  output.appendLine(`sandbox: ${health.summary}; self-test: ${health.self_test}`);
  const msg = isolationMessage(health);
  if (!msg || msg === shownIsolationMessage) return;
  shownIsolationMessage = msg;
  void vscode.window.showWarningMessage(msg);
}

async function restart(context: vscode.ExtensionContext): Promise<void> {
  const old = client;
  client = undefined;
  if (old) {
    try {
      await old.stop(5000);
    } catch {
      // already stopped
    }
  }
  await startClient(context);
}

/** The running client, or undefined after telling the user why there is none. */
function running(): LanguageClient | undefined {
  if (client && client.state === State.Running) return client;
  void vscode.window.showWarningMessage(
    status.text.includes('not found')
      ? 'CodeForge: the language server binary was not found; set `codeforge.server.path` and restart.'
      : 'CodeForge: the language server is not running (see the CodeForge output).',
  );
  return undefined;
}

function folderUris(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.toString());
}

async function generateAtCursor(): Promise<void> {
  const lc = running();
  const editor = vscode.window.activeTextEditor;
  if (!lc || !editor) return;
  const params = {
    textDocument: { uri: editor.document.uri.toString() },
    position: { line: editor.selection.active.line, character: editor.selection.active.character },
  };
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'CodeForge: generating…', cancellable: true },
    (_p, token) => lc.sendRequest<GenerateResult>('codeforge/generate', params, token),
  );
  if (!result) return;
  if (result.verification) status.verified(result.verification);
  refreshStatus();
  if (result.edit) {
    const edit = await lc.protocol2CodeConverter.asWorkspaceEdit(result.edit);
    const ok = await vscode.workspace.applyEdit(edit);
    if (!ok) {
      void vscode.window.showWarningMessage('CodeForge: the edit could not be applied (the document changed?)');
      return;
    }
    void vscode.window.showInformationMessage(`CodeForge: ${result.message}`);
  } else {
    void vscode.window.showWarningMessage(`CodeForge: ${result.message}`);
  }
}

async function showContext(): Promise<void> {
  const lc = running();
  const editor = vscode.window.activeTextEditor;
  if (!lc || !editor) return;
  const pos = editor.selection.active;
  const r = await lc.sendRequest<ContextResult>('codeforge/context', {
    textDocument: { uri: editor.document.uri.toString() },
    position: { line: pos.line, character: pos.character },
  });
  const doc = await vscode.workspace.openTextDocument({
    language: 'markdown',
    content: formatContext(vscode.workspace.asRelativePath(editor.document.uri), pos.line, r),
  });
  await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

async function setTrust(trust: boolean): Promise<void> {
  if (trust && !vscode.workspace.isTrusted) {
    const choice = await vscode.window.showWarningMessage(
      'CodeForge: VS Code does not trust this workspace, so CodeForge never runs its tests here. Trust the workspace in VS Code first.',
      'Manage Workspace Trust',
    );
    if (choice) void vscode.commands.executeCommand('workbench.trust.manage');
    return;
  }
  const lc = running();
  if (!lc) return;
  const r = await lc.sendRequest(ExecuteCommandRequest.type, {
    command: trust ? 'codeforge.trustWorkspace' : 'codeforge.untrustWorkspace',
    arguments: folderUris(),
  });
  const n = (r as { workspaces?: string[] } | null)?.workspaces?.length ?? 0;
  void vscode.window.showInformationMessage(
    trust
      ? `CodeForge: tests may now run in ${n} workspace folder(s) to verify generated code.`
      : `CodeForge: tests will never run in ${n} workspace folder(s); results stay unverified.`,
  );
}

/** "CodeForge: Download models": the server installs the missing models (progress in the status bar). */
async function downloadModels(): Promise<void> {
  const lc = running();
  if (!lc) return;
  let outcome: { result: unknown } | { error: unknown };
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'CodeForge: downloading models (progress in the status bar)…' },
      () => lc.sendRequest(ExecuteCommandRequest.type, { command: PULL_MODELS_COMMAND, arguments: [] }),
    );
    outcome = { result };
  } catch (error) {
    outcome = { error };
  }
  const notice = pullModelsNotice(outcome);
  output.appendLine(notice.text);
  if (notice.kind === 'error') void vscode.window.showErrorMessage(notice.text);
  else void vscode.window.showInformationMessage(notice.text);
}

async function reindex(): Promise<void> {
  const lc = running();
  if (!lc) return;
  await lc.sendRequest(ExecuteCommandRequest.type, { command: 'codeforge.reindex', arguments: [] });
}

async function onConfigurationChanged(context: vscode.ExtensionContext, e: vscode.ConfigurationChangeEvent): Promise<void> {
  const affects = (s: string) => e.affectsConfiguration(s);
  if (needsRestart(affects)) {
    await restart(context);
    return;
  }
  if (affectsServer(affects)) await pushSettings(context);
}

/** Sends the current settings; restarts the server when a key was unset (layers keep old values). */
async function pushSettings(context: vscode.ExtensionContext): Promise<void> {
  const layer = currentLayer();
  status.backend = backendLabel(layer);
  status.trusted = vscode.workspace.isTrusted;
  refreshStatus();
  if (!client || client.state !== State.Running) return;
  if (removedKeys(sentLayer, layer).length > 0) {
    await restart(context);
    return;
  }
  sentLayer = layer;
  await client.sendNotification(DidChangeConfigurationNotification.type, changeConfigurationParams(layer));
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('CodeForge', { log: true });
  statusItem = vscode.window.createStatusBarItem('codeforge.status', vscode.StatusBarAlignment.Left, 10);
  statusItem.name = 'CodeForge';
  statusItem.command = 'codeforge.showContext';
  statusItem.show();
  refreshStatus();
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand('codeforge.generateAtCursor', generateAtCursor),
    vscode.commands.registerCommand('codeforge.reindexWorkspace', reindex),
    vscode.commands.registerCommand('codeforge.showContext', showContext),
    vscode.commands.registerCommand('codeforge.trust', () => setTrust(true)),
    vscode.commands.registerCommand('codeforge.untrust', () => setTrust(false)),
    vscode.commands.registerCommand('codeforge.restart', () => restart(context)),
    vscode.commands.registerCommand('codeforge.downloadModels', downloadModels),
    vscode.workspace.onDidChangeConfiguration((e) => onConfigurationChanged(context, e)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => pushSettings(context)),
  );
  await startClient(context);
}

export async function deactivate(): Promise<void> {
  if (client) await client.stop();
}

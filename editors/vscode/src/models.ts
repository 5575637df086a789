// "CodeForge: Download models": what to tell the user about the server's answer to
// `workspace/executeCommand` `codeforge.pullModels`. No `vscode` import: unit-tested in node.

/** The command the server runs: installs the missing pinned models with `$/progress`. */
export const PULL_MODELS_COMMAND = 'codeforge.pullModels';

export interface Notice {
  kind: 'info' | 'error';
  text: string;
}

/**
 * The notification for the outcome of `codeforge.pullModels`: `{"installed": N}` (N models
 * downloaded, 0 when all were present) or the request's error (a ResponseError, or anything thrown).
 */
export function pullModelsNotice(outcome: { result: unknown } | { error: unknown }): Notice {
  if ('error' in outcome) {
    const e = outcome.error;
    const msg = (e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e)
      ? String((e as { message: unknown }).message)
      : String(e)
    ).trim();
    if (/unknown command/i.test(msg) && msg.includes(PULL_MODELS_COMMAND)) {
      return {
        kind: 'error',
        text: 'CodeForge: this language server cannot download models (it is older than the extension); run `codeforge model pull` in a terminal, or update the server.',
      };
    }
    return { kind: 'error', text: `CodeForge: downloading the models failed: ${msg || 'no reason given'}` };
  }
  const r = outcome.result as { installed?: unknown } | null | undefined;
  const n = r && typeof r === 'object' ? r.installed : undefined;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    return { kind: 'error', text: `CodeForge: unexpected answer to ${PULL_MODELS_COMMAND}: ${JSON.stringify(outcome.result)}` };
  }
  if (n === 0) return { kind: 'info', text: 'CodeForge: the models are already installed (and verified).' };
  return { kind: 'info', text: `CodeForge: models installed (${n} downloaded and verified).` };
}

//! The questions the server asks before trusting a workspace: whether its tests may run (asked
//! once, `window/showMessageRequest`: Allow / Not now / Never; Allow and Never are remembered per
//! workspace in the user's config dir, Not now for this session; `verify.trust` in the settings
//! can pre-trust (`always`) or forbid (`never`)), and whether a workspace's own `codeforge.toml`
//! may apply the restricted keys it sets (its restricted keys are ignored, the index opens
//! without them, until the user answers Allow to one question per file content and session;
//! Allow pins the approval to the file's blake3 hash in the trust store and reloads the
//! settings, and a changed file asks again). Owns this session's answers; must not reach the
//! session or handlers (it gets the client, the store and the layers it needs).
//! Not to be confused with `codeforge_verify::trust`, the store the answers are kept in.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use codeforge_config::TrustSetting;
use codeforge_verify::trust::{WorkspaceConfig, known_trust};
use codeforge_verify::{TrustDecision, TrustStore};
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use crate::layers::{SharedLayers, reload_workspace};
use crate::workspace::Workspace;

const ALLOW: &str = "Allow";
const NOT_NOW: &str = "Not now";
const NEVER: &str = "Never";
const APPROVE_CONFIG: &str = "Allow";
const IGNORE_CONFIG: &str = "Ignore";

/// This session's answers to the trust questions.
#[derive(Default)]
pub(crate) struct SessionTrust {
    /// Workspaces answered "Not now" in this session.
    not_now: std::sync::Mutex<HashSet<PathBuf>>,
    /// `(root, file hash)` of every `codeforge.toml` asked about this session (asked once).
    config_asked: std::sync::Mutex<HashSet<(PathBuf, String)>>,
    /// One question at a time: concurrent generations wait for the first answer.
    asking: tokio::sync::Mutex<()>,
}

impl SessionTrust {
    /// Forgets a "Not now" (the user trusted or untrusted the workspace by command).
    pub fn forget_not_now(&self, root: &std::path::Path) {
        self.not_now.lock().unwrap().remove(root);
    }
}

/// Whether tests may run in `root`; asks the user once when nothing is known.
pub(crate) async fn ask_trust(
    client: Client,
    store: Option<TrustStore>,
    session: Arc<SessionTrust>,
    root: PathBuf,
    setting: TrustSetting,
) -> Result<(), String> {
    let root = root.as_path();
    // One question at a time; a concurrent generation sees the first answer.
    let _one = session.asking.lock().await;
    if let Some(known) = known_trust(setting, store.as_ref(), root) {
        return known;
    }
    if session.not_now.lock().unwrap().contains(root) {
        return Err(
            "this workspace is not trusted to run tests (answered “Not now” this session)".into(),
        );
    }
    // What a test run gets on this machine, said as it is: below full isolation nothing runs
    // unless the user's own config lowers `verify.sandbox`.
    let support = codeforge_verify::sandbox::support();
    let isolation = match support.level {
        codeforge_verify::sandbox::Level::Full => {
            "Test runs are sandboxed: they see a scratch copy, not your files, your home directory or the network".to_string()
        }
        _ => format!(
            "This machine gives {}. Tests run only if your ~/.config/codeforge/config.toml sets verify.sandbox = \"{}\"",
            support.summary(),
            support.level.as_str()
        ),
    };
    let question = format!(
        "CodeForge checks generated code by running this workspace's tests on it. Running tests executes the workspace's code. {isolation}. Allow it in {}?",
        root.display()
    );
    let actions = [ALLOW, NOT_NOW, NEVER].map(|t| MessageActionItem {
        title: t.to_string(),
        properties: Default::default(),
    });
    let answer = client
        .show_message_request(MessageType::WARNING, question, Some(actions.to_vec()))
        .await;
    let title = answer.ok().flatten().map(|a| a.title);
    match title.as_deref() {
        Some(ALLOW) => {
            if let Some(s) = &store
                && let Err(e) = s.set(root, Some(TrustDecision::Allow))
            {
                tracing::warn!("could not remember the trust answer: {e}");
            }
            Ok(())
        }
        Some(NEVER) => {
            if let Some(s) = &store {
                let _ = s.set(root, Some(TrustDecision::Never));
            }
            Err("you chose never to run tests in this workspace".into())
        }
        _ => {
            session.not_now.lock().unwrap().insert(root.to_path_buf());
            Err("this workspace is not trusted to run tests (answered “Not now”)".into())
        }
    }
}

/// Asks once (per file content and session) whether a workspace's `codeforge.toml` may apply
/// the restricted keys it sets; meanwhile the workspace runs without them. Allow pins the
/// approval to the hash of the bytes asked about and reloads the workspace's settings.
pub(crate) fn ask_config_approval(
    client: &Client,
    store: Option<TrustStore>,
    layers: Arc<SharedLayers>,
    session: &SessionTrust,
    ws: Arc<Workspace>,
    config: WorkspaceConfig,
) {
    let Some(question) = config.ignored_message(
        "Allow applies them to this file as it is now (a changed file asks again); Ignore keeps them ignored.",
    ) else {
        return;
    };
    if !session
        .config_asked
        .lock()
        .unwrap()
        .insert((ws.root.clone(), config.hash.clone()))
    {
        return;
    }
    tracing::warn!("{question}");
    let client = client.clone();
    tokio::spawn(async move {
        let actions = [APPROVE_CONFIG, IGNORE_CONFIG].map(|t| MessageActionItem {
            title: t.to_string(),
            properties: Default::default(),
        });
        let answer = client
            .show_message_request(MessageType::WARNING, question, Some(actions.to_vec()))
            .await;
        if answer.ok().flatten().map(|a| a.title).as_deref() != Some(APPROVE_CONFIG) {
            return;
        }
        let Some(store) = store else {
            client
                .show_message(
                    MessageType::ERROR,
                    "CodeForge: no config directory (HOME unset) to remember the approval in",
                )
                .await;
            return;
        };
        if let Err(e) = store.approve_config(&ws.root, Some(&config.hash)) {
            client
                .show_message(
                    MessageType::ERROR,
                    format!("CodeForge: could not save the approval: {e}"),
                )
                .await;
            return;
        }
        let (_, errors) = reload_workspace(&layers, Some(&store), &ws);
        for e in errors {
            client.show_message(MessageType::ERROR, e).await;
        }
    });
}

//! The settings layers that are not a workspace's own (the user's file, the editor's two, the
//! environment) and how a workspace's settings are made from them with its `codeforge.toml`,
//! through the one merge function, `codeforge_config::merge`. Owns the layers' lock; must not
//! reach the client, the session or handlers (callers report the messages it returns).

use std::path::Path;
use std::sync::Mutex;

use codeforge_config::{Layer, Layers, Settings};
use codeforge_verify::TrustStore;
use codeforge_verify::trust::WorkspaceConfig;

use crate::workspace::{Job, Workspace};

/// The layers every workspace shares. All come from the user (the editor's from its settings,
/// the environment from whoever started the server), so none of them is restricted.
#[derive(Default)]
pub(crate) struct SharedLayers {
    layers: Mutex<Layers>,
}

impl SharedLayers {
    /// `(file name, layer)` of `<config dir>/codeforge/config.toml`.
    pub fn set_user(&self, user: Option<(String, Layer)>) {
        self.layers.lock().unwrap().user = user;
    }
    /// `initializationOptions`.
    pub fn set_init(&self, layer: Layer) {
        self.layers.lock().unwrap().init = Some(layer);
    }
    /// The latest `workspace/didChangeConfiguration`.
    pub fn set_change(&self, layer: Layer) {
        self.layers.lock().unwrap().change = Some(layer);
    }
    /// The environment overrides (`codeforge_config::env_layer`).
    pub fn set_env(&self, layer: Option<Layer>) {
        self.layers.lock().unwrap().env = layer;
    }

    /// Settings for a workspace, layer over layer: defaults, the user's file, the workspace's
    /// `codeforge.toml` as it may apply (`file_layer`), `initializationOptions`,
    /// `workspace/didChangeConfiguration`, the environment. On a validation error the editor
    /// layers and the environment are dropped, then the workspace's, and the error is reported.
    pub fn settings_for(&self, file_layer: Option<&Layer>) -> (Settings, Option<String>) {
        let all = Layers {
            workspace: file_layer.cloned(),
            ..self.layers.lock().unwrap().clone()
        };
        match codeforge_config::merge(&all) {
            Ok(s) => (s, None),
            Err(e) => {
                let files = Layers {
                    user: all.user.clone(),
                    workspace: all.workspace.clone(),
                    ..Layers::default()
                };
                let user = Layers {
                    user: all.user.clone(),
                    ..Layers::default()
                };
                let fallback = codeforge_config::merge(&files)
                    .or_else(|_| codeforge_config::merge(&user))
                    .unwrap_or_default();
                (fallback, Some(format!("CodeForge: invalid settings: {e}")))
            }
        }
    }
}

/// Reads `<root>/codeforge.toml` with the user's approvals from `store` applied. Errors are
/// returned as messages for the user.
pub(crate) fn read_workspace_file(
    store: Option<&TrustStore>,
    root: &Path,
) -> (Option<WorkspaceConfig>, Option<String>) {
    use codeforge_verify::trust::ConfigFileError;
    match codeforge_verify::trust::read_workspace_config(root, store) {
        Ok(c) => (c, None),
        Err(ConfigFileError::Invalid(e)) => (
            None,
            Some(format!("CodeForge: {e}; this file is ignored until fixed")),
        ),
        Err(e) => (None, Some(format!("CodeForge: {e}"))),
    }
}

/// Re-reads a workspace's `codeforge.toml` and reconfigures the workspace with it; returns the
/// file (whose ignored keys may need a question) and messages for the user.
pub(crate) fn reload_workspace(
    layers: &SharedLayers,
    store: Option<&TrustStore>,
    ws: &Workspace,
) -> (Option<WorkspaceConfig>, Vec<String>) {
    let (config, file_err) = read_workspace_file(store, &ws.root);
    let layer = config.as_ref().map(|c| c.effective.clone());
    *ws.file_layer.lock().unwrap() = layer.clone();
    let (settings, err) = layers.settings_for(layer.as_ref());
    ws.submit(Job::Reconfigure(settings));
    (config, [file_err, err].into_iter().flatten().collect())
}

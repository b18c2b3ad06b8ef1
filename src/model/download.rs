//! Downloading a hub model on a background thread, with its progress sent over a channel,
//! so that a window can draw a progress bar while the files arrive.

use std::path::PathBuf;

use crossbeam_channel::{unbounded, Receiver};

use super::hub::{resolve, DownloadEvent, HubOptions};
use super::source::ModelSpec;

/// A report from a download thread.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadUpdate {
    Event(DownloadEvent),
    /// The download ended: the model's file or folder, or what went wrong.
    Done(Result<PathBuf, String>),
}

/// A running download. Dropping it lets the thread finish in the background.
pub struct Download {
    pub repo: String,
    updates: Receiver<DownloadUpdate>,
}

impl Download {
    /// Returns the updates that arrived since the last call.
    pub fn poll(&self) -> Vec<DownloadUpdate> {
        self.updates.try_iter().collect()
    }

    /// Blocks until the next update; None once the thread has ended.
    pub fn recv(&self) -> Option<DownloadUpdate> {
        self.updates.recv().ok()
    }
}

/// Starts downloading the hub model `spec` (`owner/name` or `owner/name@revision`) into
/// the Hugging Face cache of `options`. A model already on disk finishes at once.
pub fn spawn_download(spec: &str, mut options: HubOptions) -> Result<Download, String> {
    let parsed = ModelSpec::parse(spec, None).map_err(|e| e.to_string())?;
    let Some(repo) = parsed.hub_repo().map(str::to_string) else {
        return Err(format!("{spec:?} is a file or folder on this computer, not a hub id: there is nothing to download"));
    };
    // The user asked for this download, so the offline setting does not apply to it.
    options.offline = false;

    let (sender, updates) = unbounded();
    std::thread::Builder::new()
        .name("download".into())
        .spawn(move || {
            let progress = sender.clone();
            let result = resolve(&parsed, &options, &mut |event| {
                let _ = progress.send(DownloadUpdate::Event(event));
            });
            let done = result
                .map(|files| files.path().to_path_buf())
                .map_err(|e| e.to_string());
            match &done {
                Ok(path) => tracing::info!(path = %path.display(), "download finished"),
                Err(error) => tracing::warn!(%error, "download failed"),
            }
            let _ = sender.send(DownloadUpdate::Done(done));
        })
        .map_err(|e| format!("could not start the download thread: {e}"))?;
    Ok(Download { repo, updates })
}

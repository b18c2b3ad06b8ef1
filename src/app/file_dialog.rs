//! Native file dialogs behind a trait, so that tests can replace them with a fake.

use std::path::PathBuf;

/// The kind of file or folder a dialog picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePurpose {
    /// A .gguf model file.
    ModelFile,
    /// A Hugging Face model folder (config.json plus safetensors).
    ModelFolder,
    /// A training data file.
    Dataset,
    /// The destination of an exported adapter (a save dialog).
    ExportAdapter,
    /// A saved adapter file, to try it.
    Adapter,
}

/// One request to pick a file or folder; the texts are already translated.
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub purpose: FilePurpose,
    pub title: String,
    /// The name of the file-type filter, such as "Data files".
    pub filter_name: String,
    /// Accepted extensions without the dot; ignored for folders.
    pub extensions: &'static [&'static str],
    /// The file name a save dialog starts with.
    pub suggested_name: Option<String>,
}

/// Opens file dialogs. `pick` returns None when the user cancels.
pub trait FileDialog {
    fn pick(&self, request: &FileRequest) -> Option<PathBuf>;
}

/// The system's file dialog through rfd (the XDG desktop portal on Linux). The call blocks
/// the UI thread until the dialog closes.
pub struct NativeFileDialog;

impl FileDialog for NativeFileDialog {
    fn pick(&self, request: &FileRequest) -> Option<PathBuf> {
        let dialog = rfd::FileDialog::new().set_title(&request.title);
        let picked = match request.purpose {
            FilePurpose::ModelFolder => dialog.pick_folder(),
            FilePurpose::ModelFile | FilePurpose::Dataset | FilePurpose::Adapter => dialog
                .add_filter(&request.filter_name, request.extensions)
                .pick_file(),
            FilePurpose::ExportAdapter => {
                let dialog = dialog.add_filter(&request.filter_name, request.extensions);
                match &request.suggested_name {
                    Some(name) => dialog.set_file_name(name).save_file(),
                    None => dialog.save_file(),
                }
            }
        };
        tracing::debug!(purpose = ?request.purpose, picked = ?picked, "file dialog closed");
        picked
    }
}

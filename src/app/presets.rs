//! Finding the preset configs (presets/*.toml) shown on the start screen.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::config_file::ConfigFile;

use super::i18n::Language;

/// Environment variable naming an extra preset folder, searched first.
pub const PRESETS_ENV: &str = "REFT_STUDIO_PRESETS";

/// The presets/ folder of the source tree, built into the binary, so that an installed
/// binary without the source tree still has its presets.
static BUILT_IN: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/presets");

/// A preset config (one training run or a routed set) and the file it came from.
#[derive(Debug, Clone)]
pub struct Preset {
    pub path: PathBuf,
    pub config: ConfigFile,
}

impl Preset {
    /// Returns the gallery name in `language`, or the run name when the file has no [preset] table.
    pub fn name(&self, language: Language) -> String {
        match (self.config.preset(), language) {
            (Some(info), Language::English) => info.name_en.clone(),
            (Some(info), Language::SimplifiedChinese) => info.name_zh_cn.clone(),
            (None, _) => self.config.run_name(),
        }
    }

    pub fn description(&self, language: Language) -> Option<String> {
        self.config.preset().map(|info| match language {
            Language::English => info.description_en.clone(),
            Language::SimplifiedChinese => info.description_zh_cn.clone(),
        })
    }
}

/// The presets found, and the files that could not be read.
#[derive(Debug, Clone, Default)]
pub struct PresetScan {
    pub presets: Vec<Preset>,
    /// A file and why it was skipped.
    pub errors: Vec<(PathBuf, String)>,
}

/// Lists the folders searched for presets, in order: `REFT_STUDIO_PRESETS`, presets/ in the
/// current folder, beside the executable and one level up, and the source tree's
/// presets/ as recorded at build time. Missing folders and repeats are dropped. When none
/// exists, the built-in presets are written to the app's data folder and that folder is
/// returned.
pub fn preset_dirs() -> Vec<PathBuf> {
    let found = existing_preset_dirs();
    if !found.is_empty() {
        return found;
    }
    let Some(data_dir) = dirs::data_dir() else {
        tracing::warn!(
            "no presets folder found and no data folder to write the built-in presets to"
        );
        return Vec::new();
    };
    let target = data_dir
        .join("reft-studio")
        .join(format!("presets-{}", env!("CARGO_PKG_VERSION")));
    match write_built_in_presets(&target) {
        Ok(()) => vec![target],
        Err(error) => {
            tracing::warn!(dir = %target.display(), %error, "could not write the built-in presets");
            Vec::new()
        }
    }
}

/// Writes the built-in presets (configs and their data) into `dir`, unless a preset
/// config is there already, so that edits a user made there survive.
pub fn write_built_in_presets(dir: &Path) -> std::io::Result<()> {
    let has_presets = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|entry| entry.path().extension().is_some_and(|ext| ext == "toml"))
        })
        .unwrap_or(false);
    if has_presets {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    extract_presets(&BUILT_IN, dir)?;
    tracing::info!(dir = %dir.display(), "wrote the built-in presets");
    Ok(())
}

/// Writes the files of `source` under `target`, leaving out runs/ folders: `reft-studio
/// train` writes its runs beside a config, so a source tree's presets/ may contain some.
// NOTE: such runs are still built into the binary, which makes it larger; only the copy
// written here leaves them out.
fn extract_presets(source: &include_dir::Dir<'_>, target: &Path) -> std::io::Result<()> {
    for entry in source.entries() {
        match entry {
            include_dir::DirEntry::Dir(dir) => {
                if dir.path().file_name().is_some_and(|name| name == "runs") {
                    continue;
                }
                std::fs::create_dir_all(target.join(dir.path()))?;
                extract_presets(dir, target)?;
            }
            include_dir::DirEntry::File(file) => {
                std::fs::write(target.join(file.path()), file.contents())?
            }
        }
    }
    Ok(())
}

fn existing_preset_dirs() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os(PRESETS_ENV).filter(|value| !value.is_empty()) {
        candidates.push(PathBuf::from(dir));
    }
    if let Ok(current) = std::env::current_dir() {
        candidates.push(current.join("presets"));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        candidates.push(exe_dir.join("presets"));
        if let Some(parent) = exe_dir.parent() {
            candidates.push(parent.join("presets"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets"));

    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|dir| dir.is_dir())
        .filter(|dir| seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())))
        .collect()
}

/// Reads every *.toml file in `dirs`. A file name seen in an earlier folder hides the same
/// name in later folders. Presets are sorted by their `[preset] order`, then by file name.
pub fn scan(dirs: &[PathBuf]) -> PresetScan {
    let mut scan = PresetScan::default();
    let mut seen_names = HashSet::new();

    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "could not list the preset folder");
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();

        for path in files {
            let Some(file_name) = path.file_name().map(|name| name.to_os_string()) else {
                continue;
            };
            if !seen_names.insert(file_name) {
                continue;
            }
            match ConfigFile::load(&path) {
                Ok(config) => scan.presets.push(Preset { path, config }),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "skipping an invalid preset");
                    scan.errors.push((path, error.to_string()));
                }
            }
        }
    }
    scan.presets.sort_by_key(|preset| {
        let order = preset
            .config
            .preset()
            .and_then(|info| info.order)
            .unwrap_or(u32::MAX);
        (
            order,
            preset.path.file_name().map(|name| name.to_os_string()),
        )
    });
    scan
}

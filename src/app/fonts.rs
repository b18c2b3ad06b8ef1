//! Fonts: egui's built-in fonts have no CJK glyphs, so a system CJK font is added as a
//! fallback family for Chinese text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

/// Environment variable naming a font file to use instead of the search below.
pub const FONT_ENV: &str = "REFT_STUDIO_CJK_FONT";

/// A font file and the face to use inside it (collections hold several faces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjkFont {
    pub path: PathBuf,
    pub index: u32,
}

/// Known CJK font files, in order of preference, with the face index of the Simplified
/// Chinese face. In NotoSansCJK-Regular.ttc the faces are JP, KR, SC, TC, HK (fc-query,
/// Debian 12 fonts-noto-cjk 20220127). NOTE: the other distributions' Noto paths assume
/// the same order; with another order Chinese still renders, in another regional style.
const CANDIDATES: &[(&str, u32)] = &[
    // Debian and Ubuntu: fonts-noto-cjk.
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    // Arch: noto-fonts-cjk.
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    // Fedora: google-noto-sans-cjk-fonts.
    (
        "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
        2,
    ),
    (
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        2,
    ),
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
        0,
    ),
    // Debian and Ubuntu: fonts-wqy-microhei, fonts-wqy-zenhei, fonts-droid-fallback.
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    (
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        0,
    ),
    ("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc", 0),
    // macOS and Windows.
    ("/System/Library/Fonts/PingFang.ttc", 0),
    ("/System/Library/Fonts/STHeiti Light.ttc", 0),
    ("C:\\Windows\\Fonts\\msyh.ttc", 0),
    ("C:\\Windows\\Fonts\\simsun.ttc", 0),
];

/// Monochrome fonts with wide emoji coverage, tried in order after the CJK font, so that
/// emoji answers and data show as glyphs instead of boxes. egui draws outline glyphs only,
/// so colour emoji fonts cannot serve here.
const EMOJI_CANDIDATES: &[&str] = &[
    // Debian and Ubuntu: fonts-symbola.
    "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
    "/usr/share/fonts/truetype/noto/NotoEmoji-Regular.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoEmoji-Regular.ttf",
];

/// Finds a CJK font: the file named by `REFT_STUDIO_CJK_FONT`, else the first known file
/// that exists.
pub fn find_cjk_font() -> Option<CjkFont> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|value| !value.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(CjkFont { path, index: 0 });
        }
        tracing::warn!(path = %path.display(), "{FONT_ENV} names no file; searching the usual font folders");
    }
    CANDIDATES
        .iter()
        .map(|(path, index)| (Path::new(path), *index))
        .find(|(path, _)| path.is_file())
        .map(|(path, index)| CjkFont {
            path: path.to_path_buf(),
            index,
        })
}

/// Installs egui's default fonts plus a CJK fallback when one is found. Returns the CJK
/// font in use; without one, Chinese text shows as empty boxes and a warning is logged.
pub fn install_fonts(ctx: &egui::Context) -> Option<CjkFont> {
    let mut fonts = FontDefinitions::default();
    let found = find_cjk_font().and_then(|font| match std::fs::read(&font.path) {
        Ok(bytes) => Some((font, bytes)),
        Err(error) => {
            tracing::warn!(path = %font.path.display(), %error, "could not read the CJK font");
            None
        }
    });

    let installed = match found {
        Some((font, bytes)) => {
            let mut data = FontData::from_owned(bytes);
            data.index = font.index;
            fonts.font_data.insert("cjk".to_owned(), Arc::new(data));
            for family in [FontFamily::Proportional, FontFamily::Monospace] {
                fonts
                    .families
                    .entry(family)
                    .or_default()
                    .push("cjk".to_owned());
            }
            tracing::info!(path = %font.path.display(), index = font.index, "CJK font loaded");
            Some(font)
        }
        None => {
            tracing::warn!(
                "no CJK font found: Chinese text will not render. Install fonts-noto-cjk (Debian, Ubuntu) or set {FONT_ENV} to a .ttf/.otf/.ttc file"
            );
            None
        }
    };
    if let Some(path) = EMOJI_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
    {
        match std::fs::read(path) {
            Ok(bytes) => {
                fonts
                    .font_data
                    .insert("emoji".to_owned(), Arc::new(FontData::from_owned(bytes)));
                for family in [FontFamily::Proportional, FontFamily::Monospace] {
                    fonts
                        .families
                        .entry(family)
                        .or_default()
                        .push("emoji".to_owned());
                }
                tracing::info!(path = %path.display(), "emoji font loaded");
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "could not read the emoji font")
            }
        }
    }
    ctx.set_fonts(fonts);
    installed
}

/// Returns `text` without emoji variation selectors (U+FE0F, U+FE0E), which egui's
/// monochrome fonts have no glyph for and would draw as boxes after the emoji.
pub fn displayable(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\u{fe0f}' | '\u{fe0e}'))
        .collect()
}

//! Rebuilds when a preset changes: the presets are built into the binary (see
//! `app::presets`), and `include_dir!` alone does not tell cargo to watch them.

fn main() {
    println!("cargo:rerun-if-changed=presets");
}

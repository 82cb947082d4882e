//! Nothing to build here: mlua-sys's build script compiles the sources through this crate.
//! Watching them makes an edit to the patched Lua rebuild lua-src, and so mlua-sys.
fn main() {
    println!("cargo:rerun-if-changed=lua-5.5.1");
}

//! Makes the `skynet` binary a host for C modules: its symbols go in the dynamic symbol
//! table (as upstream links with `-Wl,-E`), so a `cservice/*.so` or `luaclib/*.so`
//! opened with `dlopen` finds `skynet_*` and `lua_*` in the executable itself. An
//! exported symbol counts as used, so `--gc-sections` and LTO keep every function of
//! the Lua object files the runtime links (all of them: it opens every standard
//! library); test/cmodule/lua-symbols.c fails to load if one of upstream's Lua API
//! functions goes missing. The printf-style `skynet_error` is C (src/cabi/error.c);
//! nothing in Rust calls it, so its archive is linked whole.
fn main() {
    println!("cargo:rerun-if-changed=src/cabi/error.c");
    cc::Build::new()
        .file("src/cabi/error.c")
        .warnings(true)
        .cargo_metadata(false)
        .compile("skynet_cabi");
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    println!("cargo:rustc-link-search=native={out}");
    println!("cargo:rustc-link-lib=static:+whole-archive=skynet_cabi");
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
}

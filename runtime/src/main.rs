//! The `skynet` binary: `skynet CONFIG` runs a node, as upstream's does;
//! `skynet lua SCRIPT [ARGS]` runs a client script in a plain Lua 5.5 interpreter.

use skynet::luaclib;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: skynet::memory::CountingAlloc = skynet::memory::CountingAlloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("lua") if args.len() >= 3 => skynet::lua::interpreter::run(
            &args[0],
            &args[2],
            &args[3..],
            &[
                (c"client.socket", luaclib::clientsocket::open),
                (c"client.crypt", luaclib::crypt::open),
                (c"lpeg", luaclib::lpeg::open),
            ],
            skynet::lua::stack::traceback,
        ),
        Some(config) => skynet::start::start(config),
        None => {
            eprintln!("Need a config file. Please read skynet wiki : https://github.com/cloudwu/skynet/wiki/Config");
            eprintln!("usage: skynet configfilename");
            ExitCode::from(1)
        }
    }
}

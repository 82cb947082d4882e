//! The `skynet` binary: `skynet CONFIG` runs a node, as upstream's does.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: skynet::memory::CountingAlloc = skynet::memory::CountingAlloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1) {
        Some(config) => skynet::start::start(config),
        None => {
            eprintln!("Need a config file. Please read skynet wiki : https://github.com/cloudwu/skynet/wiki/Config");
            eprintln!("usage: skynet configfilename");
            ExitCode::from(1)
        }
    }
}

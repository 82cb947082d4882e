//! `cargo bench` runner for the node-level benchmarks in `bench/`.
//!
//! Each benchmark is a Lua start service (`bench/bench_<name>.lua`) that does its
//! workload inside a real node, measures itself with `skynet.hpc()` and the process CPU
//! time from `/proc/self/stat`, prints one line
//! `BENCH <name> <primary>=<v> <key>=<v> ...` and aborts the node. This runner writes a
//! config for each benchmark into a scratch directory, runs the `skynet` binary on it,
//! parses that line and prints a table (the median of `--runs` runs per figure).
//!
//! Measuring inside the node, rather than timing the process from here, keeps node
//! start-up and shutdown out of the figures, and makes the same Lua files usable on any
//! skynet binary: `SKYNET_BIN=/path/to/skynet SKYNET_ROOT=/path/to/upstream cargo bench`
//! runs the workloads on another binary (C skynet, say) with that root's `lualib/` and
//! `service/`, while `bench/` always comes from this repository.
//!
//! Nothing here asserts on timings: a benchmark fails only when it produces no result.
//!
//! Usage: `cargo bench --bench core -- [--runs N] [--threads N] [--set KEY=VALUE]...
//! [--timeout SECS] [--list] [NAME...]`.

use skynet::config::lua_str;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// One benchmark: the name used on the command line and in the table, what it measures
/// (for `--list`), the start service that runs it (`bench/bench_<service>.lua`, which
/// prints `BENCH <service> ...`), config lines it adds (before `--set`, so the command
/// line wins), the worker threads it pins (else `--threads`), and whether it needs two
/// harbor nodes: harbor 1 (the master) runs the service with `bench_role = "sink"` and
/// prints `BENCHREADY`, then harbor 2 runs it as the measured node.
struct Bench {
    name: &'static str,
    about: &'static str,
    service: &'static str,
    config: &'static [(&'static str, &'static str)],
    threads: Option<u32>,
    harbor: bool,
}

impl Bench {
    /// A single-node benchmark whose start service carries its name.
    const fn node(name: &'static str, about: &'static str) -> Bench {
        Bench {
            name,
            about,
            service: name,
            config: &[],
            threads: None,
            harbor: false,
        }
    }

    /// The request/response pingpong over one TCP connection (`bench_sock_pingpong.lua`).
    const fn pingpong(
        name: &'static str,
        about: &'static str,
        config: &'static [(&'static str, &'static str)],
        threads: u32,
    ) -> Bench {
        Bench {
            name,
            about,
            service: "sock_pingpong",
            config,
            threads: Some(threads),
            harbor: false,
        }
    }
}

/// In the order they run.
const BENCHES: &[Bench] = &[
    Bench::node(
        "send",
        "one producer floods a consumer with skynet.send, then syncs with a call",
    ),
    Bench::node(
        "call",
        "sequential skynet.call round trips to an echo service",
    ),
    Bench::node(
        "spawn",
        "sequential skynet.newservice of an idle service; memory per service; kill",
    ),
    Bench::node(
        "timer",
        "many coroutines doing skynet.sleep(1) repeatedly; wall time over ideal",
    ),
    Bench::node(
        "seri",
        "skynet.pack/unpack round trips of a ~700-byte nested table",
    ),
    Bench {
        harbor: true,
        ..Bench::node(
            "harbor_send",
            "skynet.send floods a service on another harbor node, then syncs with a call",
        )
    },
    Bench::node(
        "sharetable",
        "a ~10 MB table loaded once with sharetable, read by 1000 agents; memory",
    ),
    Bench::node(
        "sharedata",
        "a ~10 MB table loaded once with sharedata, read by 1000 agents; memory",
    ),
    Bench::pingpong(
        "sock_pingpong_64",
        "one connection, a request of bench_body bytes answered by 4 bytes (64 B)",
        &[("bench_body", "64")],
        2,
    ),
    Bench::pingpong(
        "sock_pingpong_8k",
        "one connection, a request of bench_body bytes answered by 4 bytes (8 KB)",
        &[("bench_body", "8192")],
        2,
    ),
    Bench::pingpong(
        "sock_pingpong_64_t1",
        "as sock_pingpong_64 on one worker thread",
        &[("bench_body", "64")],
        1,
    ),
    Bench::pingpong(
        "sock_pingpong_8k_t1",
        "as sock_pingpong_8k on one worker thread",
        &[("bench_body", "8192")],
        1,
    ),
];

/// A node's place in a two-node harbor benchmark.
struct HarborNode {
    id: u32,
    master: u16,
    address: u16,
}

/// Default per-run limit. The defaults take a few seconds; this only stops a node that
/// hangs (a benchmark that never reports, a binary that never starts the service).
const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// Worker threads per node: the figures are meant to be compared on a 2-core machine.
const DEFAULT_THREADS: u32 = 2;

const USAGE: &str = "\
usage: cargo bench --bench core -- [OPTIONS] [NAME...]

Runs the Lua benchmark services in bench/ on a skynet node and prints a table.
NAME filters benchmarks by substring (all when none is given).

options:
  --runs N          run each benchmark N times and report the median (default 1)
  --threads N       worker threads of the node (default 2; *_t1 rows pin 1, pingpong 2)
  --set KEY=VALUE   add a config line, e.g. --set bench_n=100000 (repeatable)
  --timeout SECS    kill a run that has not finished after SECS (default 120)
  --list            list the benchmarks and exit
  -h, --help        this text

environment:
  SKYNET_BIN    the skynet binary to run (default: the one cargo built)
  SKYNET_ROOT   a skynet checkout whose lualib/ and service/ (and, for C skynet,
                luaclib/ and cservice/) to use; bench/ still comes from this repository";

struct Options {
    runs: usize,
    threads: u32,
    sets: Vec<(String, String)>,
    timeout: Duration,
    list: bool,
    filters: Vec<String>,
}

/// Parses the command line. `Ok(None)` means help was printed.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        runs: 1,
        threads: DEFAULT_THREADS,
        sets: Vec::new(),
        timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        list: false,
        filters: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        // Both `--opt value` and `--opt=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            // cargo passes `--bench` to every bench target; it means nothing here.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--list" => o.list = true,
            "--runs" => o.runs = positive(&value("--runs")?, "--runs")?,
            "--threads" => {
                let n = positive(&value("--threads")?, "--threads")?;
                o.threads = u32::try_from(n).map_err(|_| "--threads is too large".to_owned())?;
            }
            "--timeout" => {
                let s = positive(&value("--timeout")?, "--timeout")?;
                o.timeout = Duration::from_secs(s as u64);
            }
            "--set" => {
                let kv = value("--set")?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--set {kv}: expected KEY=VALUE"))?;
                // The key becomes a Lua global assignment in the config, so it must be
                // a plain identifier.
                let ident = !k.is_empty()
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ident {
                    return Err(format!("--set {kv}: {k:?} is not a config key"));
                }
                o.sets.push((k.to_owned(), v.to_owned()));
            }
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            _ => o.filters.push(arg),
        }
    }
    Ok(Some(o))
}

fn positive(s: &str, name: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name}: expected a positive integer, got {s:?}")),
    }
}

/// Where everything a node needs comes from.
struct Setup {
    bin: PathBuf,
    /// Holds `lualib/` and `service/` (and `luaclib/`, `cservice/` for C skynet).
    lib_root: PathBuf,
    /// This repository, which holds `bench/`.
    repo: PathBuf,
}

impl Setup {
    fn from_env() -> Result<Setup, String> {
        // CARGO_MANIFEST_DIR is runtime/; the repository root is its parent.
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let repo = manifest
            .parent()
            .ok_or("runtime/ has no parent directory")?
            .to_path_buf();
        let bin = match std::env::var_os("SKYNET_BIN") {
            Some(b) if !b.is_empty() => PathBuf::from(b),
            _ => PathBuf::from(env!("CARGO_BIN_EXE_skynet")),
        };
        let lib_root = match std::env::var_os("SKYNET_ROOT") {
            Some(r) if !r.is_empty() => PathBuf::from(r),
            _ => repo.clone(),
        };
        // Absolute paths, because the node runs in a scratch directory.
        let bin = absolute(&bin)?;
        let lib_root = absolute(&lib_root)?;
        if !bin.is_file() {
            return Err(format!("skynet binary {} does not exist", bin.display()));
        }
        let loader = lib_root.join("lualib/loader.lua");
        if !loader.is_file() {
            return Err(format!(
                "{} has no lualib/loader.lua (is SKYNET_ROOT a skynet checkout?)",
                lib_root.display()
            ));
        }
        Ok(Setup {
            bin,
            lib_root,
            repo,
        })
    }

    /// The node config for one benchmark.
    fn config(&self, bench: &Bench, o: &Options, harbor: Option<&HarborNode>) -> String {
        let lib = |rest: &str| format!("{}/{}", self.lib_root.display(), rest);
        let bench_dir = |rest: &str| format!("{}/bench/{}", self.repo.display(), rest);
        let mut c = String::new();
        // `root` names the skynet root the library comes from (the repository unless
        // SKYNET_ROOT is set); the trailing slash matches upstream's `root = "./"`.
        let _ = writeln!(c, "root = {}", lua_str(&lib("")));
        let _ = writeln!(c, "thread = {}", bench.threads.unwrap_or(o.threads));
        match harbor {
            None => {
                let _ = writeln!(c, "harbor = 0");
            }
            Some(h) => {
                let _ = writeln!(c, "harbor = {}", h.id);
                let _ = writeln!(c, "master = \"127.0.0.1:{}\"", h.master);
                let _ = writeln!(c, "address = \"127.0.0.1:{}\"", h.address);
                if h.id == 1 {
                    let _ = writeln!(c, "standalone = \"127.0.0.1:{}\"", h.master);
                    let _ = writeln!(c, "bench_role = \"sink\"");
                }
            }
        }
        let _ = writeln!(
            c,
            "start = {}",
            lua_str(&format!("bench_{}", bench.service))
        );
        let _ = writeln!(c, "bootstrap = \"snlua bootstrap\"");
        // bench/ first, so a benchmark service cannot be shadowed by a library service.
        let luaservice = format!("{};{}", bench_dir("?.lua"), lib("service/?.lua"));
        let _ = writeln!(c, "luaservice = {}", lua_str(&luaservice));
        let _ = writeln!(c, "lualoader = {}", lua_str(&lib("lualib/loader.lua")));
        // bench/ is on the module path for the shared helper bench/benchlib.lua.
        let lua_path = format!(
            "{};{};{}",
            lib("lualib/?.lua"),
            lib("lualib/?/init.lua"),
            bench_dir("?.lua")
        );
        let _ = writeln!(c, "lua_path = {}", lua_str(&lua_path));
        // C skynet loads its native modules and services from these; this project's
        // binary has them built in and ignores the missing files.
        let _ = writeln!(c, "lua_cpath = {}", lua_str(&lib("luaclib/?.so")));
        let _ = writeln!(c, "cpath = {}", lua_str(&lib("cservice/?.so")));
        for (k, v) in bench.config {
            let _ = writeln!(c, "{k} = {}", lua_str(v));
        }
        for (k, v) in &o.sets {
            let _ = writeln!(c, "{k} = {}", lua_str(v));
        }
        c
    }
}

/// `p` made absolute against the current directory (without resolving symlinks, so
/// a missing path still gets a readable error later).
fn absolute(p: &Path) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .map_err(|e| format!("cannot read the current directory: {e}"))
}

/// The figures of one run, in the order the benchmark printed them.
type Figures = Vec<(String, String)>;

/// Runs one benchmark once and returns its figures, or a one-line reason.
fn run_once(setup: &Setup, bench: &Bench, o: &Options, run: usize) -> Result<Figures, String> {
    let dir = std::env::temp_dir().join(format!(
        "skynet-bench-{}-{}-{run}",
        std::process::id(),
        bench.name
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, h: Option<&HarborNode>| {
        let config = dir.join(name);
        std::fs::write(&config, setup.config(bench, o, h))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        Ok::<PathBuf, String>(config)
    };
    let mut sink = None;
    let config = if bench.harbor {
        let [master, address1, address2] = [free_port()?, free_port()?, free_port()?];
        let node = |id, address| HarborNode {
            id,
            master,
            address,
        };
        let sink_config = write("sink.lua", Some(&node(1, address1)))?;
        sink = Some(Sink::start(&setup.bin, &dir, &sink_config, o.timeout)?);
        write("config.lua", Some(&node(2, address2)))?
    } else {
        write("config.lua", None)?
    };

    let out = run_node(&setup.bin, &dir, &config, o.timeout);
    drop(sink);
    let out = out?;
    let result = parse_output(bench.service, &out.stdout).map_err(|why| {
        let status = match out.status {
            Some(s) => s.to_string(),
            None => format!("killed after {} s", o.timeout.as_secs()),
        };
        format!(
            "{why} ({status}; config and output kept in {})\n{}",
            dir.display(),
            tail(&out.stdout, &out.stderr)
        )
    });
    if result.is_err() {
        // Keep the evidence of a failed run; a good run leaves nothing behind.
        let _ = std::fs::write(dir.join("stdout.txt"), &out.stdout);
        let _ = std::fs::write(dir.join("stderr.txt"), &out.stderr);
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// A free TCP port on 127.0.0.1 (free when asked; the node binds it a moment later).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// The sink node of a harbor benchmark; killed when dropped.
struct Sink(Child);

impl Sink {
    /// Starts the node and waits until it prints `BENCHREADY`.
    fn start(bin: &Path, dir: &Path, config: &Path, timeout: Duration) -> Result<Sink, String> {
        let out = dir.join("sink.txt");
        let file = std::fs::File::create(&out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let child = Command::new(bin)
            .arg(config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut sink = Sink(child);
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.contains("BENCHREADY") {
                return Ok(sink);
            }
            if !matches!(sink.0.try_wait(), Ok(None)) || start.elapsed() > timeout {
                return Err(format!("the sink node did not get ready\n{text}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct NodeOutput {
    /// None when the node was killed at the timeout.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Runs the node in `dir` and collects its output, killing it after `timeout`.
fn run_node(
    bin: &Path,
    dir: &Path,
    config: &Path,
    timeout: Duration,
) -> Result<NodeOutput, String> {
    let mut child = Command::new(bin)
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    // Drained on their own threads so a chatty node cannot block on a full pipe.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_with_timeout(&mut child, timeout)?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(NodeOutput {
        status,
        stdout,
        stderr,
    })
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(Some(s)),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for the node: {e}")),
        }
        if start.elapsed() > timeout {
            // Only this child, which this runner started.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        // Polling is fine: it happens after the in-node measurement is taken.
        thread::sleep(Duration::from_millis(20));
    }
}

/// Finds `BENCH <name> k=v ...` (or the service's `BENCHERROR <name> ...`) in the
/// node's stdout. The line is searched for anywhere in a line, so a binary that
/// prefixes stdout lines still parses.
fn parse_output(name: &str, stdout: &str) -> Result<Figures, String> {
    let error_tag = format!("BENCHERROR {name} ");
    let tag = format!("BENCH {name} ");
    for line in stdout.lines() {
        if let Some(i) = line.find(&error_tag) {
            return Err(format!(
                "benchmark failed: {}",
                line[i + error_tag.len()..].trim()
            ));
        }
        if let Some(i) = line.find(&tag) {
            return parse_figures(&line[i + tag.len()..]);
        }
    }
    Err(format!("no `BENCH {name}` line in the output"))
}

fn parse_figures(rest: &str) -> Result<Figures, String> {
    let mut figures = Figures::new();
    for token in rest.split_whitespace() {
        match token.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                figures.push((k.to_owned(), v.to_owned()));
            }
            _ => return Err(format!("malformed figure {token:?} in the BENCH line")),
        }
    }
    if figures.is_empty() {
        return Err("the BENCH line has no figures".to_owned());
    }
    Ok(figures)
}

/// The last lines of the node's output, indented, for an error report.
fn tail(stdout: &str, stderr: &str) -> String {
    const LINES: usize = 12;
    let mut s = String::new();
    for (label, text) in [("stdout", stdout), ("stderr", stderr)] {
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(s, "    --- last {} of {label} ---", LINES.min(lines.len()));
        for l in &lines[lines.len().saturating_sub(LINES)..] {
            let _ = writeln!(s, "    {l}");
        }
    }
    s
}

/// Per-figure medians over runs, in the first run's order. A figure that is not a
/// number in every run (or is missing from one) shows the first run's value.
fn median_figures(runs: &[Figures]) -> Figures {
    let Some(first) = runs.first() else {
        return Figures::new();
    };
    first
        .iter()
        .map(|(key, first_value)| {
            let values: Vec<&str> = runs
                .iter()
                .filter_map(|r| r.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()))
                .collect();
            let value = if values.len() == runs.len() {
                median(&values).unwrap_or_else(|| first_value.clone())
            } else {
                first_value.clone()
            };
            (key.clone(), value)
        })
        .collect()
}

/// The median of decimal strings. With an odd count it is one of the inputs, printed as
/// the benchmark printed it; with an even count it is the mean of the middle two, with
/// as many decimals as the most precise input (so an integer figure stays an integer).
fn median(values: &[&str]) -> Option<String> {
    let nums = values
        .iter()
        .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<f64>>>()?;
    if nums.is_empty() {
        return None;
    }
    let mut order: Vec<usize> = (0..nums.len()).collect();
    order.sort_by(|&a, &b| nums[a].total_cmp(&nums[b]));
    let mid = order.len() / 2;
    if order.len() % 2 == 1 {
        return Some(values[order[mid]].to_owned());
    }
    let m = (nums[order[mid - 1]] + nums[order[mid]]) / 2.0;
    let decimals = values
        .iter()
        .map(|v| v.split_once('.').map_or(0, |(_, d)| d.len()))
        .max()
        .unwrap_or(0);
    Some(format!("{m:.decimals$}"))
}

/// One table row: a benchmark's figures, or why it has none.
enum Row {
    Figures(Figures),
    Failed(String),
}

fn print_table(rows: &[(&str, Row)]) {
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|(name, row)| match row {
            Row::Figures(f) => {
                let kv = |(k, v): &(String, String)| format!("{k}={v}");
                let primary = f.first().map(kv).unwrap_or_default();
                let rest: Vec<String> = f.iter().skip(1).map(kv).collect();
                [name.to_string(), primary, rest.join(" ")]
            }
            Row::Failed(why) => [name.to_string(), "FAILED".to_owned(), why.clone()],
        })
        .collect();
    let header = ["benchmark", "primary", "secondary"].map(str::to_owned);
    let w0 = cells
        .iter()
        .chain([&header])
        .map(|c| c[0].len())
        .max()
        .unwrap_or(0);
    let w1 = cells
        .iter()
        .chain([&header])
        .map(|c| c[1].len())
        .max()
        .unwrap_or(0);
    for c in [&header].into_iter().chain(cells.iter()) {
        println!("{:w0$}  {:w1$}  {}", c[0], c[1], c[2]);
    }
}

fn main() -> ExitCode {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if o.list {
        for b in BENCHES {
            println!("{:20} {}", b.name, b.about);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|b| o.filters.is_empty() || o.filters.iter().any(|f| b.name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        eprintln!("error: no benchmark matches {:?} (try --list)", o.filters);
        return ExitCode::from(2);
    }
    let setup = match Setup::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!("binary:   {}", setup.bin.display());
    println!("library:  {} (lualib/, service/)", setup.lib_root.display());
    println!("benches:  {}", setup.repo.join("bench").display());
    println!(
        "threads:  {}   runs: {}{}",
        o.threads,
        o.runs,
        if o.runs > 1 { " (median)" } else { "" }
    );
    println!();

    let mut rows = Vec::new();
    for bench in selected {
        let mut runs = Vec::new();
        let mut failure = None;
        for run in 1..=o.runs {
            match run_once(&setup, bench, &o, run) {
                Ok(f) => {
                    let line: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!("{} run {run}/{}: {}", bench.name, o.runs, line.join(" "));
                    runs.push(f);
                }
                Err(e) => {
                    println!(
                        "error: {} run {run}/{}: {}",
                        bench.name,
                        o.runs,
                        e.trim_end()
                    );
                    // Later runs would most likely fail the same way; move on.
                    failure = e.lines().next().map(str::to_owned);
                    break;
                }
            }
        }
        let row = match failure {
            Some(why) => Row::Failed(why),
            None => Row::Figures(median_figures(&runs)),
        };
        rows.push((bench.name, row));
    }

    println!();
    print_table(&rows);
    if rows.iter().any(|(_, r)| matches!(r, Row::Failed(_))) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

//! The small examples, run from the repository root as the README says:
//! `examples/config.share` (one item table read by 1,000 agents through sharetable) and
//! `examples/config.multicast` (a newsroom publishing to three readers). Their configs
//! have no `logger` key, so the node's log is its stdout.

mod common;

use common::{repo_root, skynet_bin};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::thread;
use std::time::Duration;

/// How long an example may take (a bound on waiting, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `config` from the repository root and collects its stdout up to and including
/// the first line containing `last` (the node is then killed), or panics with what it
/// printed.
fn run_until(config: &str, last: &str) -> Vec<String> {
    let mut child = Command::new(skynet_bin())
        .arg(config)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(line) => {
                let done = line.contains(last);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{config}: no line with {last:?}; printed:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// The number in `line` after `before` and up to the next space.
fn number_after(line: &str, before: &str) -> u64 {
    let rest = &line[line.find(before).unwrap() + before.len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn share_example_reads_one_table_from_a_thousand_agents() {
    let lines = run_until("examples/config.share", "agents read it");
    let agents = lines
        .iter()
        .filter(|l| l.contains("LAUNCH snlua share_config agent"))
        .count();
    assert_eq!(agents, 1000, "{}", lines.join("\n"));
    let copy = lines.iter().find(|l| l.contains("one copy is")).unwrap();
    let held = lines.last().unwrap();
    let copy_kb = number_after(copy, "one copy is ");
    let held_kb = number_after(held, "holding ");
    assert!(copy_kb > 500, "{copy}");
    // 1,000 private copies would be 1,000 x copy_kb; the shared table costs the agents
    // together less than one copy.
    assert!(held_kb < copy_kb, "{copy} / {held}");
}

#[test]
fn multicast_example_publishes_to_its_readers() {
    let lines = run_until("examples/config.multicast", "newsroom closed");
    let reads = |who: &str| -> Vec<u64> {
        lines
            .iter()
            .filter(|l| l.contains(&format!("] {who} reads #")))
            .map(|l| number_after(l, "reads #"))
            .collect()
    };
    let all = lines.join("\n");
    assert_eq!(reads("alice"), [1, 2, 3, 4], "{all}");
    assert_eq!(reads("carol"), [1, 2, 3, 4], "{all}");
    assert_eq!(reads("bob"), [1, 2], "{all}");
    assert!(all.contains("bob unsubscribed"), "{all}");
    assert!(
        all.contains("alice reads #3 from :00000008: readers may leave at any time"),
        "{all}"
    );
}

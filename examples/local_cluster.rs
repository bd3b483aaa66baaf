//! A local ElastiCache-like memcached cluster for development and demos: real
//! memcached nodes on loopback behind an emulated configuration endpoint.
//!
//! ```text
//! cargo run --release --example local_cluster -- --nodes 3 [--legacy] [--variant NAME]
//! ```
//!
//! Prints `endpoint IP:PORT`, then `node HOST IP PORT` per node (`-` for an
//! empty IP), then reads commands from stdin, one per line:
//! `add`, `remove PORT`, `replace PORT`, `kill PORT`, `restart PORT` (a node
//! failing in place, still listed), `list`, `quit`. End of input, SIGINT
//! and SIGTERM also quit; the memcached nodes are stopped on the way out.

use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use elasticache::discovery::Node;
use elasticache::testkit::{Engine, LocalCluster, Variant};

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

struct Args {
    nodes: usize,
    legacy: bool,
    variant: Variant,
}

const USAGE: &str = "usage: local_cluster [--nodes N] [--legacy] [--variant NAME]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 3,
        legacy: false,
        variant: Variant::Standard,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nodes" => {
                let v = it.next().ok_or("--nodes needs a number")?;
                args.nodes = v
                    .parse()
                    .map_err(|_| format!("--nodes: not a number: {v:?}"))?;
            }
            "--legacy" => args.legacy = true,
            "--variant" => {
                let v = it.next().ok_or("--variant needs a name")?;
                args.variant = v.parse()?;
            }
            "-h" | "--help" => {
                let names: Vec<&str> = Variant::all().iter().map(|v| v.name()).collect();
                println!("{USAGE}\nvariants: {}", names.join(", "));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn node_line(n: &Node) -> String {
    let ip = if n.ip.is_empty() { "-" } else { &n.ip };
    format!("{} {} {}", n.host, ip, n.port)
}

fn print_nodes(out: &mut impl Write, cluster: &LocalCluster) -> io::Result<()> {
    for n in cluster.nodes() {
        writeln!(out, "node {}", node_line(&n))?;
    }
    Ok(())
}

fn port_arg(arg: Option<&str>) -> Result<u16, String> {
    let a = arg.ok_or("missing PORT")?;
    a.parse().map_err(|_| format!("not a port: {a:?}"))
}

/// Run one command line; `Ok(false)` means quit.
fn run(cluster: &mut LocalCluster, line: &str, out: &mut impl Write) -> Result<bool, String> {
    let mut words = line.split_whitespace();
    let io_err = |e: io::Error| e.to_string();
    match words.next() {
        None => {}
        Some("quit") | Some("exit") => return Ok(false),
        Some("list") => {
            writeln!(out, "version {}", cluster.version()).map_err(io_err)?;
            print_nodes(out, cluster).map_err(io_err)?;
        }
        Some("add") => {
            let n = cluster.add_node().map_err(io_err)?;
            writeln!(
                out,
                "added {} (version {})",
                node_line(&n),
                cluster.version()
            )
            .map_err(io_err)?;
        }
        Some("remove") => {
            let n = cluster
                .remove_node(port_arg(words.next())?)
                .map_err(io_err)?;
            writeln!(
                out,
                "removed {} (version {})",
                node_line(&n),
                cluster.version()
            )
            .map_err(io_err)?;
        }
        Some("replace") => {
            let old = port_arg(words.next())?;
            let n = cluster.replace_node(old).map_err(io_err)?;
            writeln!(
                out,
                "replaced {old} by {} (version {})",
                node_line(&n),
                cluster.version()
            )
            .map_err(io_err)?;
        }
        Some(cmd @ ("kill" | "restart")) => {
            // A node failing in place: the endpoint keeps listing it.
            let port = port_arg(words.next())?;
            let server = cluster
                .server_mut(port)
                .ok_or(format!("no node on port {port}"))?;
            if cmd == "kill" {
                server.kill();
            } else {
                server.restart().map_err(io_err)?;
            }
            writeln!(out, "{cmd}ed {port}").map_err(io_err)?;
        }
        Some(other) => {
            return Err(format!(
                "unknown command {other:?} (add, remove PORT, replace PORT, kill PORT, restart PORT, list, quit)"
            ))
        }
    }
    Ok(true)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("local_cluster: {e}");
            std::process::exit(2);
        }
    };
    // A signal only sets a flag; the main loop notices it and drops the cluster,
    // which stops the memcached children.
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let engine = if args.legacy {
        Engine::Legacy
    } else {
        Engine::ElastiCache
    };
    let mut cluster = match LocalCluster::start_with(args.nodes, args.variant, engine) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("local_cluster: cannot start the cluster: {e}");
            std::process::exit(1);
        }
    };
    let stdout = io::stdout();
    {
        let mut out = stdout.lock();
        let _ = writeln!(out, "endpoint {}", cluster.endpoint_addr());
        let _ = print_nodes(&mut out, &cluster);
        let _ = out.flush();
    }

    // stdin is read on its own thread so the main loop can also watch for signals.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
        // Dropping tx tells the main loop that input ended.
    });

    loop {
        if SIGNALLED.load(Ordering::SeqCst) {
            break;
        }
        let line = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut out = stdout.lock();
        match run(&mut cluster, &line, &mut out) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
            }
        }
        let _ = out.flush();
    }
    drop(cluster);
    let _ = writeln!(stdout.lock(), "bye");
}

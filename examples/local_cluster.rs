//! A local ElastiCache-like memcached cluster for development, demos and the
//! other languages' tests: an emulated configuration endpoint in front of real
//! memcached nodes, its own or someone else's.
//!
//! ```text
//! cargo run --release --example local_cluster -- [--nodes N | --external] [--legacy] [--variant NAME]
//!     [--ip IP] [--port PORT] [--tls CHAIN KEY] [-- MEMCACHED_ARGS...]
//! ```
//!
//! Prints `endpoint IP:PORT`, then (unless `--external`) `node HOST IP PORT` per
//! node (`-` for an empty IP; a TLS node adds `plain=PORT`, its plain-text
//! listener), then reads commands from stdin, one per line.
//! Every command answers exactly one line (an `error: ...` line when it
//! fails), except `list`, which answers `version N` and one `node` line per node.
//!
//! With its own nodes (`--nodes N`, the default 3):
//! `add`, `remove PORT`, `replace PORT`, `kill PORT`, `restart PORT` (a node
//! failing in place, still listed). This is also the one memcached launcher of
//! the other languages' tests and the benchmarks, which may ignore the
//! endpoint: `--ip IP` puts every node on that address (else the variant
//! spreads them over 127.0.0.x), `--port PORT` on that port instead of a free
//! one (one node per address can), `--tls CHAIN KEY` makes them serve TLS with
//! these PEM files, and the arguments after `--` go to every memcached, after
//! the launcher's own (`-U 0 -m 64 -t 2 -c 1024`), so they win: `-- -m 1024 -t 1`.
//!
//! With `--external` it starts no memcached and lists nothing until told
//! (for tests that run their own nodes and choose their names):
//! `nodes [HOST|IP|PORT ...]` (replace the list, version + 1; an IP may be
//! empty: `localhost||11211`), `config VERSION [HOST|IP|PORT ...]` (this
//! version and list exactly).
//!
//! In both modes, what the endpoint does:
//! `version [N]` (show or set the config version), `engine elasticache|legacy|plain`
//! or `legacy on|off` (an old engine answers only `get AmazonElastiCache:cluster`),
//! `variant NAME` (the payload's layout; `empty-ip` lists no IPs), `hang on|off`
//! (read requests, never answer), `delay MS` (before each discovery reply),
//! `raw config|legacy|both HEX|off` (answer that discovery command with exactly
//! these bytes, hex-encoded), `truncate N|off` (send N bytes of a discovery
//! reply, then close), `stop` / `start` (the endpoint goes away and comes back
//! on the same port), `counts` (`counts config=N legacy=N version=N other=N
//! connections=N` since start or `reset`), `reset`, `list`, `quit`.
//! End of input, SIGINT and SIGTERM also quit; own memcached nodes are stopped
//! on the way out.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use elasticache::discovery::Node;
use elasticache::testkit::{ConfigEndpoint, Engine, LocalCluster, NodeSettings, Request, Variant};

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

struct Args {
    nodes: usize,
    external: bool,
    engine: Engine,
    variant: Variant,
    settings: NodeSettings,
}

const USAGE: &str = "usage: local_cluster [--nodes N | --external] [--legacy] [--variant NAME] \
     [--ip IP] [--port PORT] [--tls CHAIN KEY] [-- MEMCACHED_ARGS...] (commands: see the source's header)";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 3,
        external: false,
        engine: Engine::ElastiCache,
        variant: Variant::Standard,
        settings: NodeSettings::default(),
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
            "--external" => args.external = true,
            "--legacy" => args.engine = Engine::Legacy,
            "--variant" => {
                let v = it.next().ok_or("--variant needs a name")?;
                args.variant = v.parse()?;
            }
            "--ip" => args.settings.ip = Some(it.next().ok_or("--ip needs an address")?),
            "--port" => args.settings.port = Some(port_arg(it.next().as_deref())?),
            "--tls" => {
                let (chain, key) = it
                    .next()
                    .zip(it.next())
                    .ok_or("--tls needs CHAIN and KEY")?;
                args.settings.tls = Some((PathBuf::from(chain), PathBuf::from(key)));
            }
            "--" => args.settings.args = it.by_ref().collect(),
            "-h" | "--help" => {
                let names: Vec<&str> = Variant::all().iter().map(|v| v.name()).collect();
                println!("{USAGE}\nvariants: {}", names.join(", "));
                println!("own nodes: add, remove PORT, replace PORT, kill PORT, restart PORT");
                println!("--external: nodes [HOST|IP|PORT ...], config VERSION [HOST|IP|PORT ...]");
                println!(
                    "both: version [N], engine elasticache|legacy|plain, legacy on|off, variant NAME, \
                     hang on|off, delay MS, raw config|legacy|both HEX|off, truncate N|off, stop, start, \
                     counts, reset, list, quit"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.external {
        layout_only(args.variant)?;
        let s = &args.settings;
        if s.ip.is_some() || s.port.is_some() || s.tls.is_some() || !s.args.is_empty() {
            return Err(
                "--ip, --port, --tls and memcached arguments are for own nodes, not --external"
                    .into(),
            );
        }
    }
    Ok(args)
}

/// The nodes behind the endpoint: started here, or someone else's.
enum Nodes {
    Own(LocalCluster),
    External {
        endpoint: ConfigEndpoint,
        variant: Variant,
        /// As given: the variant decides how they are listed.
        given: Vec<Node>,
    },
}

impl Nodes {
    fn endpoint(&self) -> &ConfigEndpoint {
        match self {
            Nodes::Own(c) => c.endpoint(),
            Nodes::External { endpoint, .. } => endpoint,
        }
    }

    /// The nodes as the endpoint lists them.
    fn listed(&self) -> Vec<Node> {
        match self {
            Nodes::Own(c) => c.nodes(),
            Nodes::External { variant, given, .. } => list_as(*variant, given),
        }
    }

    /// One `node ...` line per listed node.
    fn print(&self, out: &mut impl Write) -> io::Result<()> {
        for n in self.listed() {
            let line = match self {
                Nodes::Own(c) => own_line(c, &n),
                Nodes::External { .. } => node_line(&n),
            };
            writeln!(out, "node {line}")?;
        }
        Ok(())
    }
}

/// In external mode a variant can only change the layout (the names and
/// addresses are the caller's): `empty-ip` blanks the IP column, the others
/// that are about the nodes themselves are refused.
fn layout_only(v: Variant) -> Result<(), String> {
    if changes_nodes(v) && v != Variant::EmptyIp {
        return Err(format!(
            "variant {} is about the nodes, not the layout: with --external, list such nodes yourself",
            v.name()
        ));
    }
    Ok(())
}

/// Whether a variant is about the nodes listed (names, addresses) rather than
/// the payload's layout.
fn changes_nodes(v: Variant) -> bool {
    matches!(v, Variant::EmptyIp | Variant::Ipv6 | Variant::DigitHost)
}

fn list_as(variant: Variant, given: &[Node]) -> Vec<Node> {
    given
        .iter()
        .map(|n| Node {
            ip: if variant == Variant::EmptyIp {
                String::new()
            } else {
                n.ip.clone()
            },
            ..n.clone()
        })
        .collect()
}

fn node_line(n: &Node) -> String {
    let ip = if n.ip.is_empty() { "-" } else { &n.ip };
    format!("{} {} {}", n.host, ip, n.port)
}

/// [`node_line`] for one of our own nodes: a TLS one also names its plain
/// listener (where tests read back what was written over TLS).
fn own_line(c: &LocalCluster, n: &Node) -> String {
    match c.server(n.port).filter(|s| s.is_tls()) {
        Some(s) => format!("{} plain={}", node_line(n), s.plain_port()),
        None => node_line(n),
    }
}

fn port_arg(arg: Option<&str>) -> Result<u16, String> {
    let a = arg.ok_or("missing PORT")?;
    a.parse().map_err(|_| format!("not a port: {a:?}"))
}

fn on_off(arg: Option<&str>) -> Result<bool, String> {
    match arg {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

fn engine_arg(arg: Option<&str>) -> Result<Engine, String> {
    match arg {
        Some("elasticache") => Ok(Engine::ElastiCache),
        Some("legacy") => Ok(Engine::Legacy),
        Some("plain") => Ok(Engine::PlainMemcached),
        other => Err(format!(
            "expected elasticache, legacy or plain, got {other:?}"
        )),
    }
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::ElastiCache => "elasticache",
        Engine::Legacy => "legacy",
        Engine::PlainMemcached => "plain",
    }
}

/// `HOST|IP|PORT`; the IP may be empty.
fn node_arg(entry: &str) -> Result<Node, String> {
    let mut parts = entry.split('|');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(host), Some(ip), Some(port), None) if !host.is_empty() => Ok(Node {
            host: host.to_string(),
            ip: ip.to_string(),
            port: port
                .parse()
                .map_err(|_| format!("not a port in {entry:?}"))?,
        }),
        _ => Err(format!("expected HOST|IP|PORT, got {entry:?}")),
    }
}

fn hex_arg(arg: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    let a = arg.ok_or("missing HEX or off")?;
    if a == "off" {
        return Ok(None);
    }
    if a.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {a:?}"));
    }
    (0..a.len())
        .step_by(2)
        .map(|i| {
            a.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("not hex: {a:?}"))
        })
        .collect::<Result<Vec<u8>, String>>()
        .map(Some)
}

fn counts_line(ep: &ConfigEndpoint) -> String {
    format!(
        "counts config={} legacy={} version={} other={} connections={}",
        ep.requests(Request::ConfigGet),
        ep.requests(Request::LegacyGet),
        ep.requests(Request::Version),
        ep.requests(Request::Other),
        ep.connections()
    )
}

/// Run one command line; `Ok(false)` means quit.
fn run(nodes: &mut Nodes, line: &str, out: &mut impl Write) -> Result<bool, String> {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(true);
    };
    let reply = match cmd {
        "quit" | "exit" => return Ok(false),
        "list" => {
            let io_err = |e: io::Error| e.to_string();
            writeln!(out, "version {}", nodes.endpoint().version()).map_err(io_err)?;
            nodes.print(out).map_err(io_err)?;
            return Ok(true);
        }
        "version" => {
            if let Some(v) = words.next() {
                let v: u64 = v.parse().map_err(|_| format!("not a version: {v:?}"))?;
                nodes.endpoint().set_config(v, nodes.listed());
            }
            format!("version {}", nodes.endpoint().version())
        }
        "engine" | "legacy" => {
            let engine = if cmd == "engine" {
                engine_arg(words.next())?
            } else if on_off(words.next())? {
                Engine::Legacy
            } else {
                Engine::ElastiCache
            };
            nodes.endpoint().set_engine(engine);
            format!("engine {}", engine_name(engine))
        }
        "variant" => {
            let v: Variant = words.next().ok_or("variant needs a name")?.parse()?;
            match nodes {
                Nodes::Own(c) if changes_nodes(v) && v != c.variant() => {
                    return Err(format!(
                        "variant {} changes the nodes, not the layout: only at start (--variant)",
                        v.name()
                    ))
                }
                Nodes::Own(_) => {}
                Nodes::External { variant, .. } => {
                    layout_only(v)?;
                    *variant = v;
                }
            }
            // The layout and (for empty-ip) the listing change; the version does not.
            let (version, listed) = (nodes.endpoint().version(), nodes.listed());
            nodes.endpoint().set_format(v.format());
            nodes.endpoint().set_config(version, listed);
            format!("variant {}", v.name())
        }
        "hang" => {
            let on = on_off(words.next())?;
            nodes.endpoint().set_hang(on);
            format!("hang {}", if on { "on" } else { "off" })
        }
        "delay" => {
            let a = words.next().ok_or("delay needs milliseconds")?;
            let ms: u64 = a.parse().map_err(|_| format!("not milliseconds: {a:?}"))?;
            nodes.endpoint().set_reply_delay(Duration::from_millis(ms));
            format!("delay {ms}")
        }
        "raw" => {
            let which = words.next().ok_or("raw needs config, legacy or both")?;
            let bytes = hex_arg(words.next())?;
            let state = if bytes.is_some() { "on" } else { "off" };
            let ep = nodes.endpoint();
            match which {
                "config" => ep.set_raw_reply_to(Request::ConfigGet, bytes),
                "legacy" => ep.set_raw_reply_to(Request::LegacyGet, bytes),
                "both" => ep.set_raw_reply(bytes),
                other => {
                    return Err(format!(
                        "raw: expected config, legacy or both, got {other:?}"
                    ))
                }
            }
            format!("raw {which} {state}")
        }
        "truncate" => {
            let a = words.next().ok_or("truncate needs a byte count or off")?;
            let n = if a == "off" {
                None
            } else {
                Some(a.parse().map_err(|_| format!("not a byte count: {a:?}"))?)
            };
            nodes.endpoint().set_truncate(n);
            match n {
                Some(n) => format!("truncate {n}"),
                None => "truncate off".to_string(),
            }
        }
        "stop" => {
            nodes.endpoint().stop();
            "stopped".to_string()
        }
        "start" => {
            nodes.endpoint().start_again().map_err(|e| e.to_string())?;
            "started".to_string()
        }
        "counts" => counts_line(nodes.endpoint()),
        "reset" => {
            nodes.endpoint().reset_counts();
            counts_line(nodes.endpoint())
        }
        _ => match nodes {
            Nodes::Own(c) => own_command(c, cmd, words.next())?,
            Nodes::External {
                endpoint,
                variant,
                given,
            } => {
                let mut set_version = None;
                if cmd == "config" {
                    let v = words.next().ok_or("config needs a VERSION")?;
                    set_version = Some(v.parse().map_err(|_| format!("not a version: {v:?}"))?);
                } else if cmd != "nodes" {
                    return Err(format!(
                        "unknown command {cmd:?} with --external (nodes, config, version, engine, \
                         legacy, variant, hang, delay, raw, truncate, stop, start, counts, reset, list, quit)"
                    ));
                }
                *given = words.map(node_arg).collect::<Result<_, _>>()?;
                let listed = list_as(*variant, given);
                let v = match set_version {
                    Some(v) => {
                        endpoint.set_config(v, listed);
                        v
                    }
                    None => endpoint.set_nodes(listed),
                };
                format!("version {v}")
            }
        },
    };
    writeln!(out, "{reply}").map_err(|e| e.to_string())?;
    Ok(true)
}

/// The commands that change a cluster of our own nodes.
fn own_command(cluster: &mut LocalCluster, cmd: &str, arg: Option<&str>) -> Result<String, String> {
    let io_err = |e: io::Error| e.to_string();
    Ok(match cmd {
        "add" => {
            let n = cluster.add_node().map_err(io_err)?;
            format!("added {} (version {})", own_line(cluster, &n), cluster.version())
        }
        "remove" => {
            let n = cluster.remove_node(port_arg(arg)?).map_err(io_err)?;
            format!("removed {} (version {})", node_line(&n), cluster.version())
        }
        "replace" => {
            let old = port_arg(arg)?;
            let n = cluster.replace_node(old).map_err(io_err)?;
            format!(
                "replaced {old} by {} (version {})",
                own_line(cluster, &n),
                cluster.version()
            )
        }
        "kill" | "restart" => {
            // A node failing in place: the endpoint keeps listing it.
            let port = port_arg(arg)?;
            let server = cluster
                .server_mut(port)
                .ok_or(format!("no node on port {port}"))?;
            if cmd == "kill" {
                server.kill();
            } else {
                server.restart().map_err(io_err)?;
            }
            format!("{cmd}ed {port}")
        }
        other => {
            return Err(format!(
                "unknown command {other:?} (add, remove PORT, replace PORT, kill PORT, restart PORT, \
                 version, engine, legacy, variant, hang, delay, raw, truncate, stop, start, counts, reset, \
                 list, quit)"
            ))
        }
    })
}

fn start(args: &Args) -> io::Result<Nodes> {
    if !args.external {
        let settings = args.settings.clone();
        return LocalCluster::start_with_settings(args.nodes, args.variant, args.engine, settings)
            .map(Nodes::Own);
    }
    let endpoint = ConfigEndpoint::start(Vec::new())?;
    endpoint.set_engine(args.engine);
    endpoint.set_format(args.variant.format());
    Ok(Nodes::External {
        endpoint,
        variant: args.variant,
        given: Vec::new(),
    })
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
    let mut nodes = match start(&args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("local_cluster: cannot start the cluster: {e}");
            std::process::exit(1);
        }
    };
    let stdout = io::stdout();
    {
        let mut out = stdout.lock();
        let _ = writeln!(out, "endpoint {}", nodes.endpoint().addr());
        let _ = nodes.print(&mut out);
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
        match run(&mut nodes, &line, &mut out) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
            }
        }
        let _ = out.flush();
    }
    drop(nodes);
    let _ = writeln!(stdout.lock(), "bye");
}

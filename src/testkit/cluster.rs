//! A local stand-in for an ElastiCache memcached cluster: real memcached
//! processes on loopback plus an emulated configuration endpoint that lists them.
//!
//! Node changes follow what AWS does: every add, remove or replace bumps the
//! config version by one; a removed node leaves the list before it is shut
//! down; a replaced node keeps its host name and comes back on a new address.

use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use crate::discovery::Node;
use crate::testkit::endpoint::{ConfigEndpoint, Engine, Format};
use crate::testkit::memcached::Memcached;

/// How the cluster lists its nodes: the layouts real endpoints have been seen to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// The documented format: `nodeNNNN.localcluster.invalid|127.0.0.1|PORT`, LF, single spaces.
    #[default]
    Standard,
    /// CRLF instead of LF after the version line.
    CrlfAfterVersion,
    /// A space after every node entry.
    TrailingSpace,
    /// Runs of three spaces between entries.
    SpaceRuns,
    /// An empty IP column (`localhost||PORT`): clients must resolve the host name.
    EmptyIp,
    /// Nodes listen on `::1`, listed unbracketed in the IP column.
    Ipv6,
    /// Host names starting with a digit (`0001.localcluster.invalid`), as TLS clusters list them.
    DigitHost,
}

impl Variant {
    /// Every variant, in a stable order. (A function, not an associated const:
    /// cbindgen would turn the const into an opaque `Variant` in the C header.)
    pub fn all() -> [Variant; 7] {
        [
            Variant::Standard,
            Variant::CrlfAfterVersion,
            Variant::TrailingSpace,
            Variant::SpaceRuns,
            Variant::EmptyIp,
            Variant::Ipv6,
            Variant::DigitHost,
        ]
    }

    /// The variant's name on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Standard => "standard",
            Variant::CrlfAfterVersion => "crlf",
            Variant::TrailingSpace => "trailing-space",
            Variant::SpaceRuns => "space-runs",
            Variant::EmptyIp => "empty-ip",
            Variant::Ipv6 => "ipv6",
            Variant::DigitHost => "digit-host",
        }
    }

    /// The payload layout this variant uses.
    pub fn format(self) -> Format {
        let mut f = Format::default();
        match self {
            Variant::CrlfAfterVersion => f.crlf_after_version = true,
            Variant::TrailingSpace => f.trailing_space = true,
            Variant::SpaceRuns => f.separator_spaces = 3,
            _ => {}
        }
        f
    }

    /// The host name listed for node number `id`.
    fn host(self, id: u32) -> String {
        match self {
            // The IP column is empty, so the name must resolve to where memcached listens.
            Variant::EmptyIp => "localhost".to_string(),
            // `.invalid` never resolves: a client that looks the name up instead of
            // using the listed IP fails loudly rather than reaching something real.
            Variant::DigitHost => format!("{id:04}.localcluster.invalid"),
            _ => format!("node{id:04}.localcluster.invalid"),
        }
    }

    /// The address memcached listens on for the `serial`-th node started.
    fn listen_ip(self, serial: u32) -> String {
        match self {
            Variant::Ipv6 => "::1".to_string(),
            Variant::EmptyIp => "127.0.0.1".to_string(),
            // Spread nodes over 127.0.0.1-127.0.0.250 so a replaced node also
            // gets a new IP, not only a new port.
            _ => format!("127.0.0.{}", serial % 250 + 1),
        }
    }

    /// What the IP column says for a node listening on `ip`.
    fn listed_ip(self, ip: &str) -> String {
        match self {
            Variant::EmptyIp => String::new(),
            _ => ip.to_string(),
        }
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Variant, String> {
        Variant::all()
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::all().iter().map(|v| v.name()).collect();
                format!(
                    "unknown variant {s:?} (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// How the nodes' memcached processes run, beyond what the variant decides.
#[derive(Debug, Clone, Default)]
pub struct NodeSettings {
    /// Every node listens on this address instead of the variant's.
    pub ip: Option<String>,
    /// Nodes listen on this port instead of a free one (a program that
    /// expects memcached's default 11211 in a network namespace of its own):
    /// on one address, only one node can. Not with `tls`.
    pub port: Option<u16>,
    /// More memcached arguments, after the testkit's own (`-m 64 -t 2 -c
    /// 1024`), so these win: `["-t", "1", "-c", "4096"]`.
    pub args: Vec<String>,
    /// Serve TLS with this certificate chain and key (PEM files), each node
    /// with a plain listener beside ([`Memcached::plain_port`]).
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug)]
struct Member {
    host: String,
    server: Memcached,
}

impl Member {
    fn node(&self, variant: Variant) -> Node {
        Node {
            host: self.host.clone(),
            ip: variant.listed_ip(self.server.ip()),
            port: self.server.port(),
        }
    }
}

/// Real memcached nodes behind an emulated configuration endpoint. Everything is
/// stopped on drop.
#[derive(Debug)]
pub struct LocalCluster {
    // Declared first so it is dropped first: the endpoint goes away before the
    // nodes it lists, as when a cluster is deleted.
    endpoint: ConfigEndpoint,
    variant: Variant,
    settings: NodeSettings,
    members: Vec<Member>,
    next_id: u32,
    started: u32,
}

impl LocalCluster {
    /// Start `n` nodes in the standard layout on a current engine.
    pub fn start(n: usize) -> io::Result<LocalCluster> {
        LocalCluster::start_with(n, Variant::Standard, Engine::ElastiCache)
    }

    /// Start `n` nodes listed in `variant`'s layout, the endpoint emulating `engine`.
    pub fn start_with(n: usize, variant: Variant, engine: Engine) -> io::Result<LocalCluster> {
        LocalCluster::start_with_settings(n, variant, engine, NodeSettings::default())
    }

    /// [`LocalCluster::start_with`], every node (these and those added later)
    /// run as `settings` say.
    pub fn start_with_settings(
        n: usize,
        variant: Variant,
        engine: Engine,
        settings: NodeSettings,
    ) -> io::Result<LocalCluster> {
        let endpoint = ConfigEndpoint::start(Vec::new())?;
        endpoint.set_engine(engine);
        endpoint.set_format(variant.format());
        let mut c = LocalCluster {
            endpoint,
            variant,
            settings,
            members: Vec::new(),
            next_id: 1,
            started: 0,
        };
        for _ in 0..n {
            let host = c.new_host();
            let server = c.start_server()?;
            c.members.push(Member { host, server });
        }
        // The first listing is version 1, as on a new cluster.
        let nodes = c.nodes();
        c.endpoint.set_config(1, nodes);
        Ok(c)
    }

    fn new_host(&mut self) -> String {
        let h = self.variant.host(self.next_id);
        self.next_id += 1;
        h
    }

    /// Start memcached for the next node. Its port is one no testkit server
    /// in this process had before (see [`crate::testkit::port`]), so a port
    /// always names one node, even one replaced or removed since.
    fn start_server(&mut self) -> io::Result<Memcached> {
        let ip = match &self.settings.ip {
            Some(ip) => ip.clone(),
            None => self.variant.listen_ip(self.started),
        };
        self.started += 1;
        let args: Vec<&str> = self.settings.args.iter().map(String::as_str).collect();
        match (&self.settings.tls, self.settings.port) {
            (Some(_), Some(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a fixed port is for plain nodes, not TLS ones",
            )),
            (Some((chain, key)), None) => Memcached::start_tls(&ip, chain, key, &args),
            (None, Some(port)) => Memcached::start_at(&ip, port, &args),
            (None, None) => Memcached::start_on(&ip, &args),
        }
    }

    fn publish(&self) -> u64 {
        self.endpoint.set_nodes(self.nodes())
    }

    /// The emulated configuration endpoint (for its runtime controls and counters).
    pub fn endpoint(&self) -> &ConfigEndpoint {
        &self.endpoint
    }

    /// The configuration endpoint's `ip:port`.
    pub fn endpoint_addr(&self) -> String {
        self.endpoint.addr()
    }

    /// The layout the nodes are listed in.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The nodes as the endpoint lists them: sorted by host name (then port), as
    /// ElastiCache does.
    pub fn nodes(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> = self.members.iter().map(|m| m.node(self.variant)).collect();
        nodes.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        nodes
    }

    /// The current config version.
    pub fn version(&self) -> u64 {
        self.endpoint.version()
    }

    /// The memcached process behind the node on `port`.
    pub fn server(&self, port: u16) -> Option<&Memcached> {
        self.members
            .iter()
            .find(|m| m.server.port() == port)
            .map(|m| &m.server)
    }

    /// The memcached process behind the node on `port`, to kill or restart it
    /// while the endpoint keeps listing it (a node failing in place).
    pub fn server_mut(&mut self, port: u16) -> Option<&mut Memcached> {
        self.members
            .iter_mut()
            .find(|m| m.server.port() == port)
            .map(|m| &mut m.server)
    }

    fn index_of(&self, port: u16) -> io::Result<usize> {
        self.members
            .iter()
            .position(|m| m.server.port() == port)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no node on port {port} in this cluster"),
                )
            })
    }

    /// Start one more node and list it (version + 1).
    pub fn add_node(&mut self) -> io::Result<Node> {
        let host = self.new_host();
        let server = self.start_server()?;
        let m = Member { host, server };
        let node = m.node(self.variant);
        self.members.push(m);
        self.publish();
        Ok(node)
    }

    /// Unlist the node on `port` (version + 1), then shut it down.
    pub fn remove_node(&mut self, port: u16) -> io::Result<Node> {
        let i = self.index_of(port)?;
        let mut m = self.members.remove(i);
        self.publish();
        m.server.kill();
        Ok(m.node(self.variant))
    }

    /// Kill the node on `port` and bring it back under the same host name on a
    /// new port (and, unless the variant pins the IP, a new IP); version + 1.
    pub fn replace_node(&mut self, port: u16) -> io::Result<Node> {
        let i = self.index_of(port)?;
        self.members[i].server.kill();
        let server = self.start_server()?;
        self.members[i].server = server;
        let node = self.members[i].node(self.variant);
        self.publish();
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stats settings` of the node on `port`: name -> value.
    fn settings_of(c: &LocalCluster, port: u16) -> std::collections::HashMap<String, String> {
        let reply = c.server(port).unwrap().command("stats settings").unwrap();
        reply
            .lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_settings_reach_every_node_and_win_over_the_launchers_own() {
        let settings = NodeSettings {
            ip: Some("127.0.0.2".into()),
            args: ["-t", "1", "-I", "2m"].map(String::from).to_vec(),
            ..NodeSettings::default()
        };
        let mut c =
            LocalCluster::start_with_settings(2, Variant::Standard, Engine::ElastiCache, settings)
                .unwrap();
        c.add_node().unwrap();
        let nodes = c.nodes();
        assert_eq!(nodes.len(), 3);
        for n in &nodes {
            assert_eq!(n.ip, "127.0.0.2", "{n:?}");
            let s = settings_of(&c, n.port);
            assert_eq!(s["num_threads"], "1", "{n:?}");
            assert_eq!(s["item_size_max"], (2 << 20).to_string(), "{n:?}");
            assert_eq!(s["maxconns"], "1024", "the launcher's own -c stays: {n:?}");
        }
    }

    #[test]
    fn a_fixed_port_is_taken_and_kept_across_a_restart() {
        let port = crate::testkit::port::free_port("127.0.0.3").unwrap();
        let settings = NodeSettings {
            ip: Some("127.0.0.3".into()),
            port: Some(port),
            ..NodeSettings::default()
        };
        let mut c =
            LocalCluster::start_with_settings(1, Variant::Standard, Engine::ElastiCache, settings)
                .unwrap();
        assert_eq!(c.nodes()[0].port, port);
        let m = c.server_mut(port).unwrap();
        m.kill();
        m.restart().unwrap();
        assert!(m.command("version").unwrap().starts_with("VERSION "));
        // A second node cannot have the same address.
        assert!(c.add_node().is_err());
    }

    #[test]
    fn variant_names_round_trip() {
        for v in Variant::all() {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
        }
        let e = "nope".parse::<Variant>().unwrap_err();
        assert!(e.contains("nope") && e.contains("digit-host"), "{e}");
    }
}

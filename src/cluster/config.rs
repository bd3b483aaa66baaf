//! What a configuration endpoint describes: a cluster's nodes and version,
//! and the limits a reply must keep. Shared by the conversation
//! (`discovery`) and the reply parser (`reply`).

use crate::net::addr;

/// The item key of the legacy discovery command.
pub const LEGACY_KEY: &str = "AmazonElastiCache:cluster";

/// Replies larger than this are refused (a 300-node cluster is about 25 KB).
pub const MAX_REPLY: usize = 4 << 20;

/// More nodes than this in one configuration is a corrupt or hostile reply:
/// an ElastiCache memcached cluster has at most a few hundred nodes. Without a
/// cap a 4 MB reply would list 150,000 nodes, each with its own pool.
pub const MAX_NODES: usize = 4096;

/// One cache node as the configuration endpoint lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// The node's DNS name (may be empty on odd endpoints; may start with a digit).
    pub host: String,
    /// The node's IP address as listed (IPv4 or unbracketed IPv6); empty means "resolve `host`".
    pub ip: String,
    /// The node's port.
    pub port: u16,
}

impl Node {
    /// The address to connect to: the IP when listed, else the host name.
    pub fn connect_host(&self) -> &str {
        if self.ip.is_empty() {
            &self.host
        } else {
            &self.ip
        }
    }

    /// `host:port` label used in messages (connect address, IPv6 bracketed).
    pub fn label(&self) -> String {
        addr::join_host_port(self.connect_host(), self.port)
    }
}

/// A cluster configuration: its version and its nodes in the endpoint's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The configuration version (grows by one on every node change). 0 when the
    /// endpoint was used as the only node under `ignore_cluster_errors`.
    pub version: u64,
    /// The nodes, in the order listed (alphabetical by host name on ElastiCache).
    pub nodes: Vec<Node>,
    /// The raw payload, compared as a whole to detect a change (a node replaced
    /// under the same version number is still a change).
    pub payload: Vec<u8>,
    /// An ElastiCache Serverless cache: the endpoint itself is the only node
    /// (TLS, no ring, no refresh). Set by the `serverless` option, or detected
    /// under TLS when the endpoint knows neither discovery command.
    pub serverless: bool,
}

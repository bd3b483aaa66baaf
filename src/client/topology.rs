//! The topology: which nodes a client has, their pools and the ring over
//! them, built from a configuration or a server list and rebuilt when nodes
//! come, go, are ejected or revive.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::*;

/// Ring names and connect addresses for a node list. Under TLS a node is
/// reached by its host name, which its certificate names (the listed IP is not
/// verifiable).
pub(super) fn specs_from_config(
    config: &Config,
    naming: NodeNaming,
    tls: bool,
) -> (Vec<ServerSpec>, Vec<NodeAddr>) {
    config
        .nodes
        .iter()
        .map(|n| {
            let name = match naming {
                NodeNaming::Ip if !n.ip.is_empty() => n.ip.clone(),
                _ if n.host.is_empty() => n.ip.clone(),
                _ => n.host.clone(),
            };
            (
                ServerSpec {
                    host: name,
                    port: n.port,
                    weight: 1,
                },
                NodeAddr {
                    host: if tls && !n.host.is_empty() {
                        n.host.clone()
                    } else {
                        n.connect_host().to_string()
                    },
                    port: n.port,
                    listed_ip: n.ip.clone(),
                },
            )
        })
        .unzip()
}


impl Client {
    pub(super) fn build(
        opts: Options,
        cluster: Option<Arc<Cluster>>,
        config: Option<Arc<Config>>,
        specs: Vec<ServerSpec>,
        addrs: Vec<NodeAddr>,
    ) -> Client {
        let opts = opts.saturated();
        let nodes = addrs
            .into_iter()
            .map(|a| {
                Arc::new(
                    NodePool::new(a, opts.connect_options(), opts.max_connections_per_node)
                        .with_value_limit(opts.max_value_size),
                )
            })
            .collect::<Vec<_>>();
        let ring = Ring::new(&specs, opts.distribution, opts.hash);
        let refreshing = cluster.is_some() && !opts.refresh_interval.is_zero();
        let state = State::new(Topology {
            cluster,
            config,
            specs,
            nodes,
            ring,
        });
        let client = Client {
            state: AtomicPtr::new(Box::into_raw(state)),
            epoch: Instant::now(),
            next_check_ms: AtomicU64::new(NEVER),
            next_refresh_ms: AtomicU64::new(NEVER),
            opts,
        };
        if refreshing {
            let at = client.now_ms() + client.opts.refresh_interval.as_millis() as u64;
            client.next_refresh_ms.store(at, Ordering::Release);
            client.next_check_ms.store(at, Ordering::Release);
        }
        client
    }

    pub(super) fn ring_is_stale(&self, t: &Topology) -> bool {
        // The ring leaves out ejected nodes only with remove_failed.
        self.opts.remove_failed && t.nodes.iter().any(|n| n.ejection_flag())
    }

    pub(super) fn live_mask(&self, nodes: &[Arc<NodePool>]) -> Vec<bool> {
        nodes
            .iter()
            .map(|n| !(self.opts.remove_failed && n.is_ejected()))
            .collect()
    }

    pub(super) fn rebuild_ring(&self, t: &Topology) -> Topology {
        let live = self.live_mask(&t.nodes);
        Topology {
            cluster: t.cluster.clone(),
            config: t.config.clone(),
            specs: t.specs.clone(),
            nodes: t.nodes.clone(),
            ring: Ring::with_live(&t.specs, &live, self.opts.distribution, self.opts.hash),
        }
    }

    /// A new node list: nodes that stay keep their pools (and connections).
    pub(super) fn apply_config(&self, t: &Topology, cfg: Arc<Config>) -> Topology {
        let (specs, addrs) =
            specs_from_config(&cfg, self.opts.node_naming, self.opts.tls_enabled());
        let nodes: Vec<Arc<NodePool>> = addrs
            .into_iter()
            .map(|a| {
                t.nodes
                    .iter()
                    .find(|n| *n.addr() == a)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(
                            NodePool::new(
                                a,
                                self.opts.connect_options(),
                                self.opts.max_connections_per_node,
                            )
                            .with_value_limit(self.opts.max_value_size),
                        )
                    })
            })
            .collect();
        let live = self.live_mask(&nodes);
        Topology {
            cluster: t.cluster.clone(),
            config: Some(cfg),
            ring: Ring::with_live(&specs, &live, self.opts.distribution, self.opts.hash),
            specs,
            nodes,
        }
    }

}

//! `elasticache_set_event_callback`: the process-wide event handler for C.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::boundary::{call, call_infallible};
use crate::error::Status;
use crate::events::{self, Event, EventKind};

/// One event, as handed to the callback. The strings are NUL-terminated,
/// empty (never NULL) when they do not apply, and valid only during the
/// callback: copy what you keep.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct elasticache_event {
    /// What happened: an `elasticache_event_kind` value.
    pub kind: u32,
    /// The node concerned, "host:port" (the address connected to).
    pub node: *const c_char,
    /// The configuration endpoint concerned, "host:port".
    pub endpoint: *const c_char,
    /// The configuration version (discovery and node-list events), else 0.
    pub config_version: u64,
    /// Nodes listed before the change (node-list events), else 0.
    pub nodes_before: u32,
    /// Nodes listed after the change (node-list events), else 0.
    pub nodes_after: u32,
    /// Why: the error of a failed refresh, the failure that ejected a node,
    /// the former address of a re-addressed node, the nodes discovered, the
    /// version of a node without the meta protocol and what falls back.
    pub reason: *const c_char,
}

/// The event callback: `event` is valid only during the call; `user_data` is
/// what was given to `elasticache_set_event_callback`.
#[allow(non_camel_case_types)]
pub type elasticache_event_fn =
    Option<unsafe extern "C" fn(event: *const elasticache_event, user_data: *mut c_void)>;

struct UserData(*mut c_void);
// SAFETY: the pointer is only handed back to the caller's callback, which the
// caller declared safe to call from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    // A method, so the closure captures the whole wrapper, not its raw field.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

fn text(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// Set the process-wide event callback (NULL `fn` removes it). Events are
/// discovery done, node added / removed / re-addressed, refresh failed, node
/// ejected, node revived, fork detected and a node without the meta
/// protocol (`elasticache_event_kind`). The
/// callback runs on the thread whose call noticed the event, after the
/// library released its locks, so it may call the library (not
/// `elasticache_client_free` on the client in use by that thread). It must be
/// safe to call from any thread. A callback already running on another
/// thread may still finish after this returns.
///
/// # Safety
/// `fn`, when not NULL, must stay callable with `user_data` until it is
/// replaced or removed.
#[no_mangle]
pub unsafe extern "C" fn elasticache_set_event_callback(
    callback: elasticache_event_fn,
    user_data: *mut c_void,
) -> Status {
    call(|| {
        let Some(f) = callback else {
            events::set_handler(None);
            return Ok(());
        };
        let data = UserData(user_data);
        events::set_handler(Some(Arc::new(move |ev: &Event| {
            let (node, endpoint, reason) = (text(&ev.node), text(&ev.endpoint), text(&ev.reason));
            let c = elasticache_event {
                kind: ev.kind as u32,
                node: node.as_ptr(),
                endpoint: endpoint.as_ptr(),
                config_version: ev.config_version,
                nodes_before: ev.nodes_before,
                nodes_after: ev.nodes_after,
                reason: reason.as_ptr(),
            };
            // SAFETY: the caller's contract; `c` and its strings outlive the call.
            unsafe { f(&c, data.get()) };
        })));
        Ok(())
    })
}

/// A static name for an event kind ("node_ejected"; "unknown" for a number
/// that is not one). Never NULL; do not free.
#[no_mangle]
pub extern "C" fn elasticache_event_kind_str(kind: u32) -> *const c_char {
    call_infallible(c"unknown".as_ptr(), || {
        match EventKind::from_u32(kind) {
            Some(EventKind::DiscoveryDone) => c"discovery_done",
            Some(EventKind::NodeAdded) => c"node_added",
            Some(EventKind::NodeRemoved) => c"node_removed",
            Some(EventKind::NodeReaddressed) => c"node_readdressed",
            Some(EventKind::RefreshFailed) => c"refresh_failed",
            Some(EventKind::NodeEjected) => c"node_ejected",
            Some(EventKind::NodeRevived) => c"node_revived",
            Some(EventKind::ForkDetected) => c"fork_detected",
            Some(EventKind::MetaUnsupported) => c"meta_unsupported",
            None => c"unknown",
        }
        .as_ptr()
    })
}

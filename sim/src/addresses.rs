//! Loopback addresses for load balancers. An environment holds a *slot* `s` (0–254): its
//! source cluster's load balancers get `127.s.1.n`, its target's `127.s.2.n`, so environments
//! running side by side (parallel tests) never share an address. All of `127.0.0.0/8` is
//! loopback on Linux: nothing here ever leaves the machine.
//!
//! A slot is held by binding `127.s.0.1:47823`, a lease the operating system releases when
//! the holder exits, so environments in different processes see each other's slots too.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

use super::server::SimError;

/// Port of the slot leases.
pub const LEASE_PORT: u16 = 47823;

/// The addresses one cluster's load balancers get: `127.<slot>.<cluster>.1-254`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadBalancerPool {
    /// Second and third octets.
    pub prefix: [u8; 2],
}

impl LoadBalancerPool {
    /// The pool of cluster number `cluster` (1: source, 2: target) in `slot`.
    pub fn new(slot: u8, cluster: u8) -> LoadBalancerPool {
        LoadBalancerPool {
            prefix: [slot, cluster],
        }
    }

    /// Whether `ip` belongs to the pool.
    pub fn contains(&self, ip: &str) -> bool {
        match ip.parse::<Ipv4Addr>() {
            Ok(ip) => {
                let o = ip.octets();
                o[0] == 127
                    && o[1] == self.prefix[0]
                    && o[2] == self.prefix[1]
                    && o[3] != 0
                    && o[3] != 255
            }
            Err(_) => false,
        }
    }

    /// The lowest address of the pool not in `used`.
    pub fn allocate(&self, used: &[String]) -> Option<String> {
        (1..=254u8)
            .map(|n| format!("127.{}.{}.{n}", self.prefix[0], self.prefix[1]))
            .find(|ip| !used.contains(ip))
    }
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct SlotLease {
    /// The slot.
    pub slot: u8,
    _listener: TcpListener,
}

fn try_lease(slot: u8) -> Option<SlotLease> {
    let address = SocketAddrV4::new(Ipv4Addr::new(127, slot, 0, 1), LEASE_PORT);
    TcpListener::bind(address).ok().map(|listener| SlotLease {
        slot,
        _listener: listener,
    })
}

/// Takes slot `slot`, or with `None` the first free slot from 1 on (starting at a point that
/// depends on the process, so parallel processes rarely race for the same one).
pub fn lease(slot: Option<u8>) -> Result<SlotLease, SimError> {
    if let Some(slot) = slot {
        return try_lease(slot).ok_or_else(|| {
            SimError::Config(format!(
                "loopback slot {slot} (addresses 127.{slot}.x.y) is in use by another simulator"
            ))
        });
    }
    let start = (std::process::id() % 200) as usize;
    (0..254usize)
        .map(|i| ((start + i) % 254 + 1) as u8)
        .find_map(try_lease)
        .ok_or_else(|| SimError::Config("no free loopback slot for load balancer addresses".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_distinct_and_allocate_in_order() {
        let source = LoadBalancerPool::new(7, 1);
        assert!(source.contains("127.7.1.4"));
        assert!(
            !source.contains("127.7.2.4")
                && !source.contains("127.7.1.0")
                && !source.contains("10.0.0.1")
        );
        assert_eq!(
            source.allocate(&["127.7.1.1".into()]).as_deref(),
            Some("127.7.1.2")
        );
    }

    #[test]
    fn a_slot_is_held_once() {
        let first = lease(None).expect("a free slot");
        assert!(lease(Some(first.slot)).is_err());
        let slot = first.slot;
        drop(first);
        assert!(lease(Some(slot)).is_ok());
    }
}

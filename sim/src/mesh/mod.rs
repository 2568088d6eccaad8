//! The mesh data plane of a simulated cluster: its ingress gateways serve HTTP for real on
//! their load balancer addresses and route by the cluster's Istio configuration.
//!
//! Pure parts: [`snapshot`] (the configuration, read from objects), [`routing`] (Gateway,
//! VirtualService, weights, DestinationRule subsets, ServiceEntries), [`apps`] and
//! [`bookinfo`] (what pods answer), [`faults`] (failures set by annotations). I/O: [`agent`]
//! watches the cluster and publishes snapshots after the propagation delay, [`gateway`]
//! listens and answers, [`forward`] sends ServiceEntry traffic over loopback.

pub mod agent;
pub mod apps;
pub mod bookinfo;
pub mod faults;
pub mod forward;
pub mod gateway;
pub mod routing;
pub mod snapshot;

//! The mesh data plane of a simulated cluster: its ingress gateways serve HTTP for real on
//! their load balancer addresses and route by the cluster's Istio configuration.
//!
//! Pure parts: [`snapshot`] (the configuration, read from objects: matches, retry policies,
//! timeouts, header operations), [`routing`] (Gateway, VirtualService, weights,
//! DestinationRule subsets, ServiceEntries), [`apps`] (Envoy's retries and timeouts in front
//! of the pods, the echo app) and [`bookinfo`] (what pods answer), [`faults`] (failures set
//! by annotations).
//!
//! The references: Istio's networking API (VirtualService, DestinationRule, Gateway,
//! ServiceEntry) and istiod's translation of it (the default retry policy, the order of
//! header operations), Envoy's router (route and virtual host matching, `retry_on`,
//! back-off, per-try and route timeouts, its local replies' statuses and bodies). I/O: [`agent`]
//! watches the cluster and publishes snapshots after the propagation delay, [`gateway`]
//! listens and answers, [`forward`] sends ServiceEntry traffic over loopback, [`proxies`] keeps
//! what each gateway pod serves and counts, [`envoy`] renders it as Envoy's admin and stats
//! endpoints do.

pub mod agent;
pub mod apps;
pub mod bookinfo;
pub mod envoy;
pub mod faults;
pub mod forward;
pub mod gateway;
pub mod proxies;
pub mod routing;
pub mod snapshot;

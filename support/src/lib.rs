//! What meshshift and its simulator both need, written once: durations as people write them,
//! files written whole or not at all, and YAML whose aliases cannot expand without bound.

pub mod connect_to;
pub mod duration;
pub mod files;
pub mod yaml;

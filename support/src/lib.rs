//! What meshshift and its simulator both need, written once: durations as people write them
//! and files written whole or not at all.

pub mod duration;
pub mod files;

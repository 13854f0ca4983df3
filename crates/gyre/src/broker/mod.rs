//! Channel history streams: where publications get their offset and epoch
//! and are kept for `history` and recovery. Only the in-memory backend
//! exists so far; the enum leaves room for Redis (design.md §3.4).

pub mod memory;

pub use memory::{HistoryError, MemoryBroker, StreamTop};

//! Where each protective feature keeps its entries beyond this process
//! (`user_block.storage_type`, `token_revoke.storage_type`,
//! `user_tokens_invalidate.storage_type`). Every node checks its in-memory
//! snapshot ([`super::Protect`]) only; a store is written before a change
//! is applied, so a change the store did not take is never in effect.
//!
//! Only `memory` exists so far: the snapshot *is* the data, so writing is
//! nothing to do (the shape of svix's no-op cache backend). Redis and
//! PostgreSQL become variants here.

use super::change::Change;
pub use crate::node::error::StoreError;

/// A protective feature's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// No persistence: entries live in each node's memory only and are
    /// gone on restart (Centrifugo PRO's default).
    Memory,
}

impl Store {
    /// Persists one change; `Ok` only once the store has it.
    pub async fn write(&self, change: &Change) -> Result<(), StoreError> {
        match self {
            Store::Memory => {
                let _ = change; // the in-memory snapshot is the store
                Ok(())
            }
        }
    }
}

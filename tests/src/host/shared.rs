//! Shared data (key/value with compare-and-swap) and shared queues, as Envoy keeps them
//! per process. One harness host is one process as far as the guest can tell.

use std::collections::{BTreeMap, VecDeque};

use super::abi::Status;

#[derive(Debug, Default)]
pub(crate) struct SharedData {
    entries: BTreeMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    pub(crate) fn get(&self, key: &str) -> Result<(Vec<u8>, u32), Status> {
        self.entries.get(key).cloned().ok_or(Status::NotFound)
    }

    /// `cas == 0` writes unconditionally; otherwise the stored cas must match (a missing
    /// key accepts any cas, as Envoy's `SharedData::set` does).
    pub(crate) fn set(&mut self, key: &str, value: Vec<u8>, cas: u32) -> Result<(), Status> {
        if let Some((_, current)) = self.entries.get(key) {
            if cas != 0 && cas != *current {
                return Err(Status::CasMismatch);
            }
        }
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.entries.insert(key.to_string(), (value, self.next_cas));
        Ok(())
    }
}

#[derive(Debug)]
struct Queue {
    vm_id: String,
    name: String,
    /// The root context told when something is enqueued.
    owner: u32,
    items: VecDeque<Vec<u8>>,
}

#[derive(Debug, Default)]
pub(crate) struct SharedQueues {
    queues: BTreeMap<u32, Queue>,
    next_token: u32,
}

impl SharedQueues {
    /// Registers (or re-registers) `name` for `vm_id`, owned by root context `owner`.
    pub(crate) fn register(&mut self, vm_id: &str, name: &str, owner: u32) -> u32 {
        if let Some(token) = self.resolve(vm_id, name) {
            if let Some(q) = self.queues.get_mut(&token) {
                q.owner = owner;
            }
            return token;
        }
        self.next_token += 1;
        self.queues.insert(
            self.next_token,
            Queue { vm_id: vm_id.to_string(), name: name.to_string(), owner, items: VecDeque::new() },
        );
        self.next_token
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.queues.iter().find(|(_, q)| q.vm_id == vm_id && q.name == name).map(|(token, _)| *token)
    }

    /// Appends; returns the root context to notify.
    pub(crate) fn enqueue(&mut self, token: u32, item: Vec<u8>) -> Result<u32, Status> {
        let q = self.queues.get_mut(&token).ok_or(Status::NotFound)?;
        q.items.push_back(item);
        Ok(q.owner)
    }

    pub(crate) fn dequeue(&mut self, token: u32) -> Result<Vec<u8>, Status> {
        let q = self.queues.get_mut(&token).ok_or(Status::NotFound)?;
        q.items.pop_front().ok_or(Status::Empty)
    }

    pub(crate) fn items(&self, name: &str) -> Option<Vec<Vec<u8>>> {
        self.queues.values().find(|q| q.name == name).map(|q| q.items.iter().cloned().collect())
    }
}

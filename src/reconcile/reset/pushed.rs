//! Operations whose completion AMAPI pushed (Pub/Sub COMMAND notifications), waiting for their
//! reset's next reconcile: it takes the operation from here instead of calling `operations.get`,
//! so a pushed completion costs no AMAPI call. Bounded: past the bound the oldest are dropped,
//! and those resets learn the outcome from their next poll instead.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::amapi::model::Operation;

/// Operations kept at most.
const KEPT: usize = 10_000;

#[derive(Default)]
pub struct Pushed(Mutex<(HashMap<String, Operation>, VecDeque<String>)>);

impl Pushed {
    /// Keeps a finished operation for its reset (unfinished ones say nothing new).
    pub fn put(&self, operation: Operation) {
        if !operation.done {
            return;
        }
        let mut guard = self.0.lock().expect("pushed operations");
        let (map, order) = &mut *guard;
        if map
            .insert(operation.name.clone(), operation.clone())
            .is_none()
        {
            order.push_back(operation.name);
        }
        while order.len() > KEPT {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The pushed operation of this name, taken.
    pub fn take(&self, name: &str) -> Option<Operation> {
        let mut guard = self.0.lock().expect("pushed operations");
        let (map, order) = &mut *guard;
        let op = map.remove(name)?;
        order.retain(|n| n != name);
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, done: bool) -> Operation {
        serde_json::from_value(serde_json::json!({"name": name, "done": done})).unwrap()
    }

    #[test]
    fn keeps_finished_operations_once_and_bounded() {
        let pushed = Pushed::default();
        pushed.put(op("a", false));
        assert!(pushed.take("a").is_none(), "pending says nothing new");
        pushed.put(op("a", true));
        pushed.put(op("a", true));
        assert!(pushed.take("a").is_some());
        assert!(pushed.take("a").is_none(), "taken once");
        for i in 0..KEPT + 5 {
            pushed.put(op(&format!("op{i}"), true));
        }
        assert!(pushed.take("op0").is_none(), "the oldest went");
        assert!(pushed.take(&format!("op{}", KEPT + 4)).is_some());
    }
}

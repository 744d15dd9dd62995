//! How many bytes of pack a fetch has received: gix reports its progress through a tree
//! of counters; this one keeps only the counter of the pack being read, which gix names
//! with a stable id, and shares it with the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gix::progress::{Count, Id, MessageLevel, NestedProgress, Progress, Step, StepShared, Unit};

/// gix's id for "bytes of the pack read so far" (`gix_pack::bundle::write::ProgressId`).
const READ_PACK_BYTES: Id = *b"BWRB";

/// A progress node: the pack-bytes node counts into the shared counter, every other node
/// into its own.
pub(crate) struct PackBytes {
    shared: StepShared,
    counter: StepShared,
    id: Id,
}

impl PackBytes {
    pub fn root(shared: Arc<AtomicUsize>) -> PackBytes {
        PackBytes {
            counter: Arc::new(AtomicUsize::new(0)),
            shared,
            id: gix::progress::UNKNOWN,
        }
    }

    fn child(&self, id: Id) -> PackBytes {
        PackBytes {
            counter: if id == READ_PACK_BYTES {
                self.shared.clone()
            } else {
                Arc::new(AtomicUsize::new(0))
            },
            shared: self.shared.clone(),
            id,
        }
    }
}

impl Count for PackBytes {
    fn set(&self, step: Step) {
        self.counter.store(step, Ordering::Relaxed);
    }

    fn step(&self) -> Step {
        self.counter.load(Ordering::Relaxed)
    }

    fn inc_by(&self, step: Step) {
        self.counter.fetch_add(step, Ordering::Relaxed);
    }

    fn counter(&self) -> StepShared {
        self.counter.clone()
    }
}

impl Progress for PackBytes {
    fn init(&mut self, _max: Option<Step>, _unit: Option<Unit>) {}

    fn set_name(&mut self, _name: String) {}

    fn name(&self) -> Option<String> {
        None
    }

    fn id(&self) -> Id {
        self.id
    }

    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl NestedProgress for PackBytes {
    type SubProgress = PackBytes;

    fn add_child(&mut self, _name: impl Into<String>) -> PackBytes {
        self.child(gix::progress::UNKNOWN)
    }

    fn add_child_with_id(&mut self, _name: impl Into<String>, id: Id) -> PackBytes {
        self.child(id)
    }
}

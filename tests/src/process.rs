//! Child processes of tests (example programs, Python peers), killed when
//! their test ends, failed or not: one left running consumes the queues
//! the next run declares, and takes its messages.

use std::process::Child;

/// A child process killed and reaped when dropped, unless taken back.
#[derive(Debug)]
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    /// Guards `child`.
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// The child, still guarded.
    pub fn get_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child until taken")
    }

    /// The child, no longer guarded (to wait for its output).
    pub fn into_inner(mut self) -> Child {
        self.0.take().expect("a child until taken")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! The runtime's floor for a `memory://` call: a request handed over a
//! tokio channel to a task that answers on a oneshot, nothing else. A
//! server runs as a task of its own, so no in-process call can cost less
//! than this, from wherever it is made.

use tokio::sync::{mpsc, oneshot};

/// A request and where to answer it.
type Job = (Vec<u8>, oneshot::Sender<Vec<u8>>);

/// A task that answers every request with its body.
pub(crate) struct Echo {
    requests: mpsc::Sender<Job>,
}

impl Echo {
    /// Spawns the answering task on the current runtime.
    pub(crate) fn start() -> Echo {
        let (requests, mut incoming) = mpsc::channel::<Job>(1_024);
        tokio::spawn(async move {
            while let Some((body, answer)) = incoming.recv().await {
                let _ = answer.send(body);
            }
        });
        Echo { requests }
    }

    /// One round trip with `body`.
    pub(crate) async fn call(&self, body: &[u8]) -> Result<(), &'static str> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send((body.to_vec(), answer))
            .await
            .map_err(|_| "the echo task is gone")?;
        let echoed = answered.await.map_err(|_| "the echo task dropped a request")?;
        debug_assert_eq!(echoed.len(), body.len());
        Ok(())
    }
}

//! [`LogLayer`]: one log line per call or cast.

use std::time::Instant;

use serde::Serialize;
use tower_layer::Layer;

use super::{Caller, Invocation};
use crate::{Context, Error, Payload};

/// Logs one line per call or cast once it ends (`tracing` target
/// `rpc_core::call`, level info): method, namespace, outcome (`ok`, or
/// [`Error::kind_name`]) and how long it took.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogLayer;

impl<S> Layer<S> for LogLayer {
    type Service = Logged<S>;

    fn layer(&self, inner: S) -> Logged<S> {
        Logged { inner }
    }
}

/// A caller that logs each request; see [`LogLayer`].
#[derive(Clone, Debug)]
pub struct Logged<S> {
    inner: S,
}

fn log<T>(kind: &str, method: &str, namespace: Option<&str>, outcome: &Result<T, Error>, started: Instant) {
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let namespace = namespace.unwrap_or("");
    match outcome {
        Ok(_) => {
            tracing::info!(target: "rpc_core::call", method, namespace, kind, outcome = "ok", elapsed_us, "request")
        }
        Err(error) => tracing::info!(
            target: "rpc_core::call",
            method,
            namespace,
            kind,
            outcome = error.kind_name(),
            %error,
            elapsed_us,
            "request"
        ),
    }
}

impl<S: Caller> Caller for Logged<S> {
    async fn call<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> Result<Option<Payload>, Error>
    where
        A: Serialize + Sync + ?Sized,
    {
        let started = Instant::now();
        let outcome = self.inner.call(ctx, invocation).await;
        log("call", invocation.method(), invocation.namespace(), &outcome, started);
        outcome
    }

    async fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> Result<(), Error>
    where
        A: Serialize + Sync + ?Sized,
    {
        let started = Instant::now();
        let outcome = self.inner.cast(ctx, invocation).await;
        log("cast", invocation.method(), invocation.namespace(), &outcome, started);
        outcome
    }
}

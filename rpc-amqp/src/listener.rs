//! Consuming: a server's three queues, or a client's reply queue, kept
//! consumed across reconnections.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::SelectAll;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Consumer};
use rpc_core::transport::{Acker, Delivery, Listener, Retry, async_trait};
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::config::AmqpConfig;
use crate::error::from_lapin;
use crate::link::{Connected, Link};
use crate::topology::{self, QueueSpec, ServerTopology, short};

/// What a listener consumes.
#[derive(Debug, Clone)]
pub(crate) enum Queues {
    /// A server's topic, server and fanout queues, acknowledged by the runtime.
    Server {
        topology: Box<ServerTopology>,
        prefetch: u16,
    },
    /// A client's reply queue, consumed without acknowledgements: replies
    /// are useless to anyone else.
    Reply(QueueSpec),
}

struct Active {
    generation: u64,
    channel: Channel,
    tags: Vec<ShortString>,
    deliveries: SelectAll<Consumer>,
    /// Resolves when this session's connection is lost.
    lost: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    /// Cloned into every unsettled delivery's acker: once all are gone,
    /// `settled` yields `None` and the channel can close.
    unsettled: mpsc::Sender<()>,
    settled: mpsc::Receiver<()>,
}

/// A listener on the consuming connection.
pub(crate) struct AmqpListener {
    link: Arc<Link>,
    queues: Queues,
    active: Option<Active>,
    backoff: Backoff,
}

impl fmt::Debug for AmqpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpListener")
            .field("queues", &self.queues)
            .field("generation", &self.active.as_ref().map(|active| active.generation))
            .finish_non_exhaustive()
    }
}

impl AmqpListener {
    /// Declares the queues and starts consuming them now, so that a
    /// declaration the broker refuses fails the caller.
    ///
    /// While the connection is down, it waits for the reconnection under
    /// way, one more attempt at most: a server started just after a broker
    /// restart comes up with the broker, and one started against a broker
    /// that stays away still fails within a retry interval.
    pub(crate) async fn start(
        link: Arc<Link>,
        config: &AmqpConfig,
        queues: Queues,
    ) -> Result<AmqpListener, TransportError> {
        let connected = link.connected(Retry::Limited(1)).await?;
        let active = setup(&link, &connected, &queues).await?;
        Ok(AmqpListener {
            link,
            queues,
            active: Some(active),
            backoff: Backoff::new(config.retry_interval, config.max_retry_interval),
        })
    }
}

async fn setup(link: &Arc<Link>, connected: &Connected, queues: &Queues) -> Result<Active, TransportError> {
    let channel = connected
        .connection
        .create_channel()
        .await
        .map_err(|error| from_lapin(error, "opening a channel"))?;
    let (specs, acknowledged): (Vec<&QueueSpec>, bool) = match queues {
        Queues::Server { topology, prefetch } => {
            channel
                .basic_qos(*prefetch, BasicQosOptions::default())
                .await
                .map_err(|error| from_lapin(error, "setting the prefetch"))?;
            for exchange in &topology.exchanges {
                topology::declare_exchange(&channel, exchange).await?;
            }
            (
                vec![&topology.topic_queue, &topology.server_queue, &topology.fanout_queue],
                true,
            )
        }
        Queues::Reply(spec) => (vec![spec], false),
    };
    let mut tags = Vec::new();
    let mut deliveries = SelectAll::new();
    for spec in specs {
        topology::declare_queue(&channel, spec).await?;
        let options = BasicConsumeOptions {
            no_ack: !acknowledged,
            ..BasicConsumeOptions::default()
        };
        let consumer = channel
            .basic_consume(short(&spec.name)?, "".into(), options, FieldTable::default())
            .await
            .map_err(|error| from_lapin(error, format!("consuming `{}`", spec.name)))?;
        tags.push(consumer.tag());
        deliveries.push(consumer);
    }
    let generation = connected.generation;
    let link = Arc::clone(link);
    let (unsettled, settled) = mpsc::channel(1);
    Ok(Active {
        generation,
        channel,
        tags,
        deliveries,
        lost: Box::pin(async move { link.lost(generation).await }),
        unsettled,
        settled,
    })
}

fn convert(delivery: lapin::message::Delivery, active: &Active, acknowledged: bool) -> Delivery {
    let content_type = delivery.properties.content_type().clone();
    let converted = Delivery::new(
        Bytes::from(delivery.data),
        content_type.as_ref().map(ShortString::as_str),
    )
    .with_redelivered(delivery.redelivered);
    if acknowledged {
        converted.with_acker(Box::new(AmqpAcker {
            acker: delivery.acker,
            channel: active.channel.clone(),
            unsettled: active.unsettled.clone(),
        }))
    } else {
        converted
    }
}

#[async_trait]
impl Listener for AmqpListener {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        let acknowledged = matches!(self.queues, Queues::Server { .. });
        loop {
            let Some(active) = &mut self.active else {
                // Consume again on the next connection.
                let connected = match self.link.connected(Retry::Forever).await {
                    Ok(connected) => connected,
                    Err(_) => return None,
                };
                match setup(&self.link, &connected, &self.queues).await {
                    Ok(active) => {
                        tracing::info!(queues = ?self.queues, "consuming again after a reconnection");
                        self.backoff.reset();
                        self.active = Some(active);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot consume after a reconnection; retrying");
                        tokio::time::sleep(self.backoff.next_delay()).await;
                    }
                }
                continue;
            };
            let lost = tokio::select! {
                item = active.deliveries.next() => match item {
                    Some(Ok(delivery)) => return Some(Ok(convert(delivery, active, acknowledged))),
                    Some(Err(error)) => from_lapin(error, "consuming"),
                    None => TransportError::new(TransportErrorKind::ConnectionLost, "the broker cancelled the consumers"),
                },
                () = &mut active.lost => {
                    TransportError::new(TransportErrorKind::ConnectionLost, "the connection was lost")
                }
            };
            self.active = None;
            if self.link.is_closed() {
                return None;
            }
            tracing::warn!(error = %lost, "stopped consuming; will consume again once reconnected");
            return Some(Err(TransportError::new(
                TransportErrorKind::ConnectionLost,
                lost.message().to_owned(),
            )
            .with_source(lost)));
        }
    }

    async fn close(mut self: Box<Self>) -> Result<(), TransportError> {
        let Some(active) = self.active.take() else {
            return Ok(());
        };
        for tag in &active.tags {
            let _ = active
                .channel
                .basic_cancel(tag.clone(), BasicCancelOptions::default())
                .await;
        }
        if let Queues::Server { topology, .. } = &self.queues {
            let deleted = active
                .channel
                .queue_delete(short(&topology.fanout_queue.name)?, QueueDeleteOptions::default())
                .await;
            if let Err(error) = deleted {
                tracing::warn!(queue = %topology.fanout_queue.name, %error, "cannot delete the fanout queue; it expires unused");
            }
        }
        // Deliveries being handled are settled on this channel: close it
        // once they are. Deliveries received but not yet taken then go back
        // to their queues.
        let Active {
            channel,
            deliveries,
            unsettled,
            mut settled,
            ..
        } = active;
        drop((deliveries, unsettled));
        let _ = settled.recv().await;
        channel
            .close(200, "closing".into())
            .await
            .map_err(|error| from_lapin(error, "closing the channel"))
    }
}

/// Settles one delivery; keeps its channel open until then, so that a
/// server can stop consuming and still acknowledge what it is running.
struct AmqpAcker {
    acker: lapin::Acker,
    channel: Channel,
    unsettled: mpsc::Sender<()>,
}

impl fmt::Debug for AmqpAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpAcker").finish_non_exhaustive()
    }
}

fn settled(result: lapin::Result<bool>, doing: &str) -> Result<(), TransportError> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(TransportError::new(
            TransportErrorKind::ConnectionLost,
            format!("{doing}: the delivery's channel is gone"),
        )),
        Err(error) => Err(from_lapin(error, doing)),
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    /// Hands the acknowledgement to lapin's I/O loop without waiting for it
    /// to be written: a delivery already acknowledged, or whose channel is
    /// gone, still fails at once; the write itself is lapin's from here on,
    /// as in oslo.messaging, whose ack also only reaches the socket's
    /// buffer. Until it is written, the channel stays open (a stopping
    /// server's last acknowledgements are not cut off by the channel's close).
    async fn ack(&self) -> Result<(), TransportError> {
        let (acker, channel, unsettled) = (self.acker.clone(), self.channel.clone(), self.unsettled.clone());
        let mut ack = Box::pin(async move {
            let result = acker.ack(BasicAckOptions::default()).await;
            drop((channel, unsettled));
            result
        });
        match (&mut ack).now_or_never() {
            Some(result) => settled(result, "acknowledging"),
            None => {
                tokio::spawn(async move {
                    if let Err(error) = settled(ack.await, "acknowledging") {
                        tracing::warn!(%error, "an acknowledgement failed; the broker will deliver the request again");
                    }
                });
                Ok(())
            }
        }
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        settled(self.acker.reject(BasicRejectOptions { requeue }).await, "rejecting")
    }
}

//! The floor: the same request/reply and cast work done with lapin directly,
//! the way one would write it by hand, with the guarantees our transport
//! gives: requests routed through a topic exchange with the mandatory flag
//! and publisher confirms; the server acknowledges each request before
//! answering, one task per request, with a prefetch of 64; replies go
//! through the default exchange to a reply queue consumed without acks.
//!
//! [`Guarantees::Floor`] drops what a call does not need to observe: no
//! publisher confirms on requests or replies, no mandatory flag, requests
//! consumed without acknowledgements. That is the least any request/reply
//! over RabbitMQ costs (issue 16's floor).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Notify, oneshot};

/// Errors of the baseline: lapin's, or a reply that never came.
pub(crate) type RawError = Box<dyn std::error::Error + Send + Sync>;

const PREFETCH: u16 = 64;

/// What the raw request/reply pays for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guarantees {
    /// Publisher confirms and mandatory routing on requests and replies,
    /// requests acknowledged: what our transport gives today.
    Confirmed,
    /// Nothing a call's caller cannot do without: no confirms, no acks.
    Floor,
}

/// A raw request/reply pair of endpoints on the broker.
pub(crate) struct RawRpc {
    client: Connection,
    server: Connection,
    publish: Channel,
    exchange: ShortString,
    queue: ShortString,
    reply_queue: ShortString,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>>,
    next_id: AtomicU64,
    confirms: bool,
}

async fn declare(channel: &Channel, queue: &str, exchange: Option<&str>) -> Result<(), RawError> {
    declare_with(channel, queue, exchange, QueueDeclareOptions::default()).await
}

async fn declare_with(
    channel: &Channel,
    queue: &str,
    exchange: Option<&str>,
    options: QueueDeclareOptions,
) -> Result<(), RawError> {
    let mut arguments = FieldTable::default();
    arguments.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    channel.queue_declare(queue.into(), options, arguments).await?;
    if let Some(exchange) = exchange {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                queue.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

impl RawRpc {
    pub(crate) async fn start(url: &str, name: &str, guarantees: Guarantees) -> Result<RawRpc, RawError> {
        let confirms = guarantees == Guarantees::Confirmed;
        let client = Connection::connect(url, ConnectionProperties::default()).await?;
        let server = Connection::connect(url, ConnectionProperties::default()).await?;
        let exchange = format!("rpc_bench_raw_{name}");
        let queue = format!("rpc_bench_raw_{name}_requests");
        let reply_queue = format!("rpc_bench_raw_{name}_replies");

        // The server: consume requests, acknowledge, answer.
        let consume = server.create_channel().await?;
        consume
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
        declare(&consume, &queue, Some(&exchange)).await?;
        consume.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let answer = server.create_channel().await?;
        if confirms {
            answer.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        let mut requests = consume
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: !confirms,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        tokio::spawn(async move {
            while let Some(Ok(request)) = requests.next().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    if confirms {
                        let _ = request.ack(BasicAckOptions::default()).await;
                    }
                    let (Some(reply_to), Some(id)) = (
                        request.properties.reply_to().clone(),
                        request.properties.correlation_id().clone(),
                    ) else {
                        return;
                    };
                    let properties = BasicProperties::default()
                        .with_correlation_id(id)
                        .with_content_type("application/octet-stream".into())
                        .with_delivery_mode(1);
                    let options = BasicPublishOptions {
                        mandatory: confirms,
                        immediate: false,
                    };
                    if let Ok(confirm) = answer
                        .basic_publish("".into(), reply_to, options, &request.data, properties)
                        .await
                    {
                        let _ = confirm.await;
                    }
                });
            }
        });

        // The client: a confirmed publishing channel and a reply consumer.
        let publish = client.create_channel().await?;
        if confirms {
            publish.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        let replies_channel = client.create_channel().await?;
        declare(&replies_channel, &reply_queue, None).await?;
        let mut replies = replies_channel
            .basic_consume(
                reply_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>> = Arc::default();
        let waiting = Arc::clone(&pending);
        tokio::spawn(async move {
            while let Some(Ok(reply)) = replies.next().await {
                let id = reply
                    .properties
                    .correlation_id()
                    .as_ref()
                    .and_then(|id| id.as_str().parse::<u64>().ok());
                if let Some(sender) = id.and_then(|id| waiting.lock().unwrap().remove(&id)) {
                    let _ = sender.send(reply.data);
                }
            }
        });
        Ok(RawRpc {
            client,
            server,
            publish,
            exchange: exchange.into(),
            queue: queue.into(),
            reply_queue: reply_queue.into(),
            pending,
            next_id: AtomicU64::new(0),
            confirms,
        })
    }

    /// One request and its reply.
    pub(crate) async fn call(&self, payload: &[u8]) -> Result<(), RawError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, reply) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, sender);
        let properties = BasicProperties::default()
            .with_correlation_id(id.to_string().into())
            .with_reply_to(self.reply_queue.clone())
            .with_content_type("application/octet-stream".into())
            .with_delivery_mode(1)
            .with_expiration("60000".into());
        let options = BasicPublishOptions {
            mandatory: self.confirms,
            immediate: false,
        };
        let confirm = self
            .publish
            .basic_publish(self.exchange.clone(), self.queue.clone(), options, payload, properties)
            .await?;
        if self.confirms && confirm.await?.is_nack() {
            return Err("publish nacked".into());
        }
        reply.await.map_err(|_| "no reply")?;
        Ok(())
    }

    pub(crate) async fn close(self) -> Result<(), RawError> {
        let channel = self.client.create_channel().await?;
        channel.queue_delete(self.queue, QueueDeleteOptions::default()).await?;
        channel
            .queue_delete(self.reply_queue, QueueDeleteOptions::default())
            .await?;
        channel
            .exchange_delete(self.exchange, ExchangeDeleteOptions::default())
            .await?;
        // The measurement is over, and the queues and exchange are gone: a
        // connection that fails to close cleanly (lapin may still be closing
        // a channel of it) costs nothing but its teardown.
        let _ = self.client.close(200, "done".into()).await;
        let _ = self.server.close(200, "done".into()).await;
        Ok(())
    }
}

/// Raw casts: publishes consumed (and acknowledged) by a counting consumer.
pub(crate) struct RawCasts {
    client: Connection,
    server: Connection,
    publish: Channel,
    exchange: ShortString,
    queue: ShortString,
    /// The delivery mode published with: 2 (persistent) for notifications.
    delivery_mode: u8,
    /// Whether a cast waits for the broker's confirm, or only for its write.
    confirms: bool,
    pub(crate) consumed: Arc<AtomicU64>,
    pub(crate) progress: Arc<Notify>,
}

impl RawCasts {
    /// Casts as ours go: transient messages. (Our topic queues are durable,
    /// which costs nothing for transient messages.)
    pub(crate) async fn start(url: &str, name: &str) -> Result<RawCasts, RawError> {
        RawCasts::start_with(url, name, false, true).await
    }

    /// The same without publisher confirms: a cast returns once written.
    pub(crate) async fn unconfirmed(url: &str, name: &str) -> Result<RawCasts, RawError> {
        RawCasts::start_with(url, name, false, false).await
    }

    /// Notifications as oslo's and ours go: persistent messages in a durable queue.
    pub(crate) async fn persistent(url: &str, name: &str) -> Result<RawCasts, RawError> {
        RawCasts::start_with(url, name, true, true).await
    }

    async fn start_with(url: &str, name: &str, persistent: bool, confirms: bool) -> Result<RawCasts, RawError> {
        let client = Connection::connect(url, ConnectionProperties::default()).await?;
        let server = Connection::connect(url, ConnectionProperties::default()).await?;
        let exchange = format!("rpc_bench_raw_{name}");
        let queue = format!("rpc_bench_raw_{name}_casts");
        let consume = server.create_channel().await?;
        consume
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let options = QueueDeclareOptions {
            durable: persistent,
            ..QueueDeclareOptions::default()
        };
        declare_with(&consume, &queue, Some(&exchange), options).await?;
        consume.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let mut deliveries = consume
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let consumed = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(Notify::new());
        let (counter, notify) = (Arc::clone(&consumed), Arc::clone(&progress));
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = deliveries.next().await {
                let (counter, notify) = (Arc::clone(&counter), Arc::clone(&notify));
                tokio::spawn(async move {
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    counter.fetch_add(1, Ordering::Relaxed);
                    notify.notify_one();
                });
            }
        });
        let publish = client.create_channel().await?;
        if confirms {
            publish.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        Ok(RawCasts {
            client,
            server,
            publish,
            exchange: exchange.into(),
            queue: queue.into(),
            delivery_mode: if persistent { 2 } else { 1 },
            confirms,
            consumed,
            progress,
        })
    }

    pub(crate) async fn cast(&self, payload: &[u8]) -> Result<(), RawError> {
        let properties = BasicProperties::default()
            .with_content_type("application/octet-stream".into())
            .with_delivery_mode(self.delivery_mode);
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirm = self
            .publish
            .basic_publish(self.exchange.clone(), self.queue.clone(), options, payload, properties)
            .await?;
        if self.confirms {
            confirm.await?;
        }
        Ok(())
    }

    pub(crate) async fn close(self) -> Result<(), RawError> {
        let channel = self.client.create_channel().await?;
        channel.queue_delete(self.queue, QueueDeleteOptions::default()).await?;
        channel
            .exchange_delete(self.exchange, ExchangeDeleteOptions::default())
            .await?;
        // The measurement is over, and the queues and exchange are gone: a
        // connection that fails to close cleanly (lapin may still be closing
        // a channel of it) costs nothing but its teardown.
        let _ = self.client.close(200, "done".into()).await;
        let _ = self.server.close(200, "done".into()).await;
        Ok(())
    }
}

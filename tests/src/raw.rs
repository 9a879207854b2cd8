//! A raw AMQP connection of a test's own, to publish what no client of
//! ours would, and read replies as they come.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::broker;

/// A raw AMQP connection of the test's own, with a reply queue it reads.
#[allow(missing_debug_implementations)]
pub struct Raw {
    /// The channel.
    pub channel: Channel,
    /// The reply queue's name.
    pub reply_queue: String,
    /// The reply queue's consumer.
    pub replies: lapin::Consumer,
    /// The connection.
    pub connection: Connection,
}

impl Raw {
    /// Connects to the test broker.
    pub async fn connect() -> Raw {
        let connection = Connection::connect(&broker::url(), ConnectionProperties::default())
            .await
            .expect("connect to the test broker");
        let channel = connection.create_channel().await.unwrap();
        let reply_queue = format!("raw_reply_{}", uuid::Uuid::new_v4().simple());
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(reply_queue.as_str().into(), options, FieldTable::default())
            .await
            .unwrap();
        let consume = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let replies = channel
            .basic_consume(reply_queue.as_str().into(), "".into(), consume, FieldTable::default())
            .await
            .unwrap();
        Raw {
            channel,
            reply_queue,
            replies,
            connection,
        }
    }

    /// Publishes `body` to `routing_key` on the control exchange (empty: the
    /// default exchange) with `content_type`.
    pub async fn publish(&self, exchange: &str, routing_key: &str, content_type: Option<&str>, body: &[u8]) {
        let mut properties = BasicProperties::default();
        if let Some(content_type) = content_type {
            properties = properties.with_content_type(content_type.into());
        }
        self.channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap();
    }

    /// How many messages wait in `queue` (which must exist).
    pub async fn message_count(&self, queue: &str) -> u32 {
        message_count(&self.channel, queue).await
    }

    /// Declares `queue` durable and without arguments, on a channel of its
    /// own: the broker refuses when the queue exists with other properties
    /// or arguments (an `x-expires`, say), and says why.
    pub async fn declare_plain(&self, queue: &str) -> Result<(), String> {
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(|error| error.to_string())?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.into(), durable, FieldTable::default())
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    /// Deletes `queue`, on a channel of its own.
    pub async fn delete_queue(&self, queue: &str) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .unwrap();
    }

    /// The next message on the test's reply queue, within `within`.
    pub async fn next_reply(&mut self, within: Duration) -> lapin::message::Delivery {
        tokio::time::timeout(within, self.replies.next())
            .await
            .expect("a reply in time")
            .expect("the reply consumer runs")
            .expect("a delivery")
    }
}

/// How many messages wait in `queue` (which must exist), asked on `channel`.
pub async fn message_count(channel: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap_or_else(|error| panic!("the queue `{queue}` exists: {error}"))
        .message_count()
}

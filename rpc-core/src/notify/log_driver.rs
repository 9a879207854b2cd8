//! oslo's `log` notification driver: each notification written to the log
//! as JSON, at its priority's level, its secrets masked.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Priority;
use super::mask::mask_secrets;
use super::message::NotificationHeader;
use crate::{CodecError, Error};

/// Writes the notification to the log, under the logger name oslo uses
/// (`oslo.messaging.notification.<event type>`, as a field).
pub(super) fn log<P: Serialize + ?Sized>(header: &NotificationHeader<'_>, payload: &P) -> Result<(), Error> {
    let message = line(header, payload)?;
    let logger = format!("oslo.messaging.notification.{}", header.event_type);
    match header.priority {
        Priority::Debug => tracing::debug!(%logger, notification = %message),
        Priority::Warn => tracing::warn!(%logger, notification = %message),
        Priority::Error | Priority::Critical => tracing::error!(%logger, notification = %message),
        // oslo finds no Python logging method for these two and writes
        // nothing; here they are written at the info level.
        Priority::Audit | Priority::Info | Priority::Sample => tracing::info!(%logger, notification = %message),
    }
    Ok(())
}

/// What oslo's driver writes: the message's six fields (no context, no
/// `_unique_id`: those belong to the messaging drivers), masked as
/// `strutils.mask_dict_password` masks them.
fn line<P: Serialize + ?Sized>(header: &NotificationHeader<'_>, payload: &P) -> Result<String, Error> {
    let payload = serde_json::to_value(payload).map_err(|error| Error::Encode {
        what: "the notification",
        source: CodecError::new(error),
    })?;
    let mut message = Map::new();
    message.insert("message_id".to_owned(), header.message_id.into());
    message.insert("publisher_id".to_owned(), header.publisher_id.into());
    message.insert("event_type".to_owned(), header.event_type.into());
    message.insert("priority".to_owned(), header.priority.as_upper().into());
    message.insert("payload".to_owned(), payload);
    message.insert("timestamp".to_owned(), header.timestamp.into());
    let mut message = Value::Object(message);
    mask_secrets(&mut message);
    Ok(message.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Context;

    #[test]
    fn secrets_are_masked_and_the_context_left_out() {
        let context = Context::new().with_request_id("req-1");
        let header = NotificationHeader {
            priority: Priority::Info,
            publisher_id: "compute.host-1",
            event_type: "compute.instance.create.end",
            message_id: "m-1",
            timestamp: "2026-12-04 10:00:00.000001",
            unique_id: "u-1",
            context: &context,
        };
        let payload = json!({
            "instance_id": "i-1",
            "command": "mount --password hunter2 /mnt",
            "Admin_Password": "hunter2",
            "auth": {"token": "t0k3n", "user": "admin", "password": {"old": "a", "note": "kept"}},
            "volumes": [{"encrypted_key": "k", "size": 10}],
            "tokens": ["a", "b"],
            "count": 3,
        });
        let line: Value = serde_json::from_str(&line(&header, &payload).unwrap()).unwrap();
        assert_eq!(
            line,
            json!({
                "message_id": "m-1",
                "publisher_id": "compute.host-1",
                "event_type": "compute.instance.create.end",
                "priority": "INFO",
                "timestamp": "2026-12-04 10:00:00.000001",
                "payload": {
                    "instance_id": "i-1",
                    "command": "mount --password *** /mnt",
                    "Admin_Password": "***",
                    "auth": {"token": "***", "user": "admin", "password": {"old": "a", "note": "kept"}},
                    "volumes": [{"encrypted_key": "***", "size": 10}],
                    "tokens": "***",
                    "count": 3,
                },
            })
        );
    }
}

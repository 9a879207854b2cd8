//! Message headers to and from AMQP's header table: strings both ways, and
//! what a peer sends bounded on receipt (`Headers::insert_received`).

use lapin::types::{AMQPValue, FieldTable, ShortString};
use rpc_core::transport::Headers;

/// The header table for `headers`, each value a long string.
pub(crate) fn to_table(headers: &Headers) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in headers.iter() {
        table.insert(ShortString::from(name), AMQPValue::LongString(value.into()));
    }
    table
}

/// The string-valued headers of a received table; other values (numbers,
/// nested tables, which oslo peers and RabbitMQ's own headers may carry)
/// are not ours and are skipped.
pub(crate) fn from_table(table: Option<&FieldTable>) -> Headers {
    let mut headers = Headers::new();
    for (name, value) in table.map(FieldTable::inner).into_iter().flatten() {
        let value = match value {
            AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
            AMQPValue::ShortString(value) => Some(value.as_str()),
            _ => None,
        };
        if let Some(value) = value {
            headers.insert_received(name.as_str(), value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_values() {
        let mut headers = Headers::new();
        headers.insert("rpc-deadline", "1764756000000");
        headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let mut table = to_table(&headers);
        assert_eq!(from_table(Some(&table)), headers);
        table.insert("x-death".into(), AMQPValue::LongLongInt(3));
        table.insert("bad".into(), AMQPValue::LongString(vec![0xff, 0xfe].into()));
        assert_eq!(from_table(Some(&table)), headers);
        assert!(from_table(None).is_empty());
    }
}

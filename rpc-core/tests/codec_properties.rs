//! Properties of both codecs' decoders, over generated input: whatever the
//! bytes, decoding returns a value or an error and never panics; what a
//! client or server encodes decodes to the same request or reply.
//!
//! The fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) search the same
//! decoders for longer; a crash they find becomes a case in `hostile_inputs`.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use rpc_core::__private::wire;
use rpc_core::transport::Bytes;
use rpc_core::{Codec, Context, ErrorCode, RemoteError, Value, Version};

const CODECS: [Codec; 2] = [Codec::MsgPack, Codec::OsloJson];

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::MsgPack), Just(Codec::OsloJson)]
}

/// JSON-like values both codecs carry exactly (finite numbers only: the
/// oslo codec writes NaN as null, as Python's json does).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::from),
            btree_map(any::<String>(), inner, 0..6).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arguments() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    btree_map("[a-z_][a-z0-9_]{0,12}", value(), 0..6).prop_map(|map| map.into_iter().collect())
}

fn context() -> impl Strategy<Value = Context> {
    btree_map(any::<String>(), value(), 0..5).prop_map(|map| map.into_iter().collect())
}

fn version() -> impl Strategy<Value = Option<Version>> {
    proptest::option::of((0u32..1000, 0u32..1000).prop_map(|(major, minor)| Version::new(major, minor)))
}

/// A valid request, encoded, and what it holds.
#[derive(Debug, Clone)]
struct Sent {
    codec: Codec,
    method: String,
    namespace: Option<String>,
    version: Option<Version>,
    context: Context,
    args: serde_json::Map<String, Value>,
    body: Bytes,
}

const MSG_ID: &str = "0123456789abcdef0123456789abcdef";

fn sent() -> impl Strategy<Value = Sent> {
    (
        codec(),
        // Names a server accepts: 1 to 255 bytes (at most 4 bytes a character).
        "\\PC{1,63}",
        proptest::option::of("\\PC{1,63}"),
        version(),
        context(),
        arguments(),
    )
        .prop_map(|(codec, method, namespace, version, context, args)| {
            let body = wire::encode_call(
                codec,
                &method,
                namespace.as_deref(),
                version.as_ref(),
                MSG_ID,
                "reply_queue",
                &context,
                &args,
            )
            .expect("encode a request");
            Sent {
                codec,
                method,
                namespace,
                version,
                context,
                args,
                body,
            }
        })
}

/// A body changed at a few places: truncated, bytes flipped or inserted.
fn mutated(body: &Bytes, edits: &[(usize, u8, u8)]) -> Bytes {
    let mut bytes = body.to_vec();
    for &(at, kind, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match kind % 3 {
            0 => bytes.truncate(at),
            1 => bytes[at] ^= byte.max(1),
            _ => bytes.insert(at, byte),
        }
    }
    Bytes::from(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in vec(any::<u8>(), 0..512)) {
        let bytes = Bytes::from(bytes);
        for codec in CODECS {
            let _ = wire::decode_request(codec, &bytes);
            let _ = wire::reply_address(codec, &bytes);
            let _ = wire::decode_reply(codec, &bytes);
            let _ = wire::decode_reply_failure(codec, &bytes);
            let _ = wire::decode_notification(codec, &bytes);
        }
    }

    /// Bodies that start and end as oslo's envelope does, whatever lies
    /// between (escapes cut short, lone surrogates, bare quotes, bytes
    /// that are not UTF-8), reach the envelope's shortcut past the parser.
    #[test]
    fn arbitrary_envelope_contents_never_panic_a_decoder(
        python in any::<bool>(),
        contents in prop_oneof![
            r#"(\\|\\u[0-9a-fA-F]{0,4}|\\[dD][89a-fA-F][0-9a-f]{0,2}|"|\PC|[\x00-\x1f])*"#.prop_map(String::into_bytes),
            vec(any::<u8>(), 0..256),
        ],
    ) {
        let start: &[u8] = if python {
            br#"{"oslo.version": "2.0", "oslo.message": ""#
        } else {
            br#"{"oslo.version":"2.0","oslo.message":""#
        };
        let bytes = Bytes::from([start, &contents, br#""}"#].concat());
        let _ = wire::decode_request(Codec::OsloJson, &bytes);
        let _ = wire::reply_address(Codec::OsloJson, &bytes);
        let _ = wire::decode_reply(Codec::OsloJson, &bytes);
        let _ = wire::decode_reply_failure(Codec::OsloJson, &bytes);
        if let Ok(notification) = wire::decode_notification(Codec::OsloJson, &bytes) {
            let _ = notification.payload::<Value>();
        }
    }

    #[test]
    fn requests_round_trip(sent in sent()) {
        let request = wire::decode_request(sent.codec, &sent.body).expect("decode what was encoded");
        prop_assert_eq!(request.method(), sent.method.as_str());
        prop_assert_eq!(request.namespace(), sent.namespace.as_deref());
        prop_assert_eq!(request.version(), sent.version.as_ref());
        prop_assert_eq!(request.context(), &sent.context);
        prop_assert!(request.is_call());
        let args: serde_json::Map<String, Value> = request.args().decode().expect("decode the arguments");
        prop_assert_eq!(args, sent.args);
        prop_assert_eq!(
            wire::reply_address(sent.codec, &sent.body),
            Some((MSG_ID.to_owned(), "reply_queue".to_owned()))
        );
    }

    #[test]
    fn damaged_requests_never_panic_a_decoder(
        sent in sent(),
        edits in vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let body = mutated(&sent.body, &edits);
        if let Ok(request) = wire::decode_request(sent.codec, &body) {
            // Whatever decodes is usable: its arguments decode or fail cleanly.
            let _ = request.args().decode::<Value>();
        }
        let _ = wire::reply_address(sent.codec, &body);
    }

    #[test]
    fn replies_round_trip(codec in codec(), msg_id in any::<String>(), result in value()) {
        let payload = codec.encode(&result).expect("encode a result");
        let body = wire::encode_reply(codec, &msg_id, &payload).expect("encode a reply");
        // A null result may travel as no result (oslo peers omit it): clients read both as null.
        let decoded = match wire::decode_reply(codec, &body).expect("decode what was encoded") {
            Some(payload) => payload.decode::<Value>().expect("decode the result"),
            None => Value::Null,
        };
        prop_assert_eq!(decoded, result);
        let (replied_to, failure) = wire::decode_reply_failure(codec, &body).expect("decode what was encoded");
        prop_assert_eq!(replied_to, msg_id);
        prop_assert!(failure.is_none());
    }

    #[test]
    fn failures_round_trip(codec in codec(), class in "[A-Za-z]{1,20}", message in any::<String>(), data in value()) {
        let failure = RemoteError::new(ErrorCode::Application, class, message).with_data(data);
        let body = wire::encode_failure(codec, "id", &failure).expect("encode a failure");
        let (_, decoded) = wire::decode_reply_failure(codec, &body).expect("decode what was encoded");
        let decoded = decoded.expect("a failure");
        prop_assert_eq!(decoded.code(), failure.code());
        prop_assert_eq!(decoded.class(), failure.class());
        prop_assert_eq!(decoded.message(), failure.message());
        // The data decodes as what was attached, in either codec.
        prop_assert_eq!(decoded.decode_data::<Value>().expect("data"), failure.decode_data::<Value>().expect("data"));
    }

    #[test]
    fn damaged_replies_never_panic_a_decoder(
        codec in codec(),
        result in value(),
        edits in vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let payload = codec.encode(&result).expect("encode a result");
        let body = wire::encode_reply(codec, MSG_ID, &payload).expect("encode a reply");
        let body = mutated(&body, &edits);
        if let Ok(Some(result)) = wire::decode_reply(codec, &body) {
            let _ = result.decode::<Value>();
        }
    }
}

/// Requests whose arguments nest `depth` arrays deep, in each codec.
fn deeply_nested(codec: Codec, depth: usize) -> Bytes {
    let args = match codec {
        // A map with one argument, `a`, then `depth` one-element arrays.
        Codec::MsgPack => {
            let mut args = vec![0x81, 0xa1, b'a'];
            args.extend(std::iter::repeat_n(0x91, depth));
            args.push(0xc0);
            args
        }
        _ => {
            let mut args = b"{\"a\": ".to_vec();
            args.extend(std::iter::repeat_n(b'[', depth));
            args.extend(std::iter::repeat_n(b']', depth));
            args.push(b'}');
            args
        }
    };
    let header = wire::encode_call(
        codec,
        "m",
        None,
        None,
        MSG_ID,
        "q",
        &Context::new(),
        &serde_json::Map::new(),
    )
    .expect("encode a request");
    // Swap the empty arguments for the nested ones, in place.
    let (empty, prefix): (&[u8], usize) = match codec {
        // `args` is a bin 32 field holding an empty map (0x80).
        Codec::MsgPack => (&[0xc6, 0, 0, 0, 1, 0x80], 5),
        _ => (b"{}", 0),
    };
    let at = header
        .windows(empty.len())
        .position(|window| window == empty)
        .expect("the arguments in the frame");
    let mut body = header[..at + prefix].to_vec();
    match codec {
        Codec::MsgPack => {
            body.truncate(at + 1);
            body.extend(u32::try_from(args.len()).unwrap().to_be_bytes());
            body.extend(&args);
        }
        _ => {
            // The oslo message is a JSON string inside the envelope: escape the quotes.
            body.extend(String::from_utf8(args).unwrap().replace('"', "\\\"").as_bytes());
        }
    }
    body.extend(&header[at + empty.len()..]);
    Bytes::from(body)
}

/// Inputs a hostile peer could send: they must fail cleanly, not overflow
/// the stack or take unbounded time. Crashes found by fuzzing join them.
#[test]
fn hostile_inputs() {
    // Found by `request_oslo`: a bare `-Infinity` after a multi-byte
    // character outside strings panicked the non-finite sanitizer.
    let crash = "{'osl\u{190}\u{44f}\0\0\0@ers`i6a3b\\\"}\"}-Infinity";
    for codec in CODECS {
        let body = Bytes::from(crash);
        assert!(wire::decode_request(codec, &body).is_err());
        assert!(wire::decode_reply(codec, &body).is_err());
        for text in [
            "[\"\u{e9}\", \u{e9}NaN]",
            "\u{1F600}Infinity",
            "{\"a\": [1, \u{e9}-Infinity]}",
        ] {
            assert!(wire::decode_request(codec, &Bytes::from(text)).is_err());
            assert!(wire::decode_reply(codec, &Bytes::from(text)).is_err());
        }
    }

    for codec in CODECS {
        for depth in [10, 100, 1_000, 100_000] {
            let body = deeply_nested(codec, depth);
            let request = wire::decode_request(codec, &body);
            let nested = request.map(|request| request.args().decode::<Value>().is_ok());
            // Shallow nesting decodes; deep nesting is refused, not a crash.
            if depth <= 100 {
                assert!(matches!(nested, Ok(true)), "{codec:?} at depth {depth}: {nested:?}");
            } else {
                assert!(!matches!(nested, Ok(true)), "{codec:?} at depth {depth} decoded");
            }
        }
    }
}

//! Notifications as a listener reads them, in the oslo codec: decoding,
//! and the payload and context of what decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_core::__private::wire;
use rpc_core::transport::Bytes;
use rpc_core::{Codec, Value};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(notification) = wire::decode_notification(Codec::OsloJson, &body) {
        let _ = notification.payload::<Value>();
        let _ = notification.context().request_id();
    }
});

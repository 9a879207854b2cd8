//! Replies as a client reads them, in the oslo codec: the result and the failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_core::__private::wire;
use rpc_core::transport::Bytes;
use rpc_core::{Codec, Value};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(Some(result)) = wire::decode_reply(Codec::OsloJson, &body) {
        let _ = result.decode::<Value>();
    }
    if let Ok((_, Some(failure))) = wire::decode_reply_failure(Codec::OsloJson, &body) {
        let _ = failure.decode_data::<Value>();
    }
});

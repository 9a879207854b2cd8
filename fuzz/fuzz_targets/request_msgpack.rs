//! Requests as a server reads them, in the msgpack codec: decoding, the
//! reply address of an unreadable request, and the arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_core::__private::wire;
use rpc_core::transport::Bytes;
use rpc_core::{Codec, Value};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(request) = wire::decode_request(Codec::MsgPack, &body) {
        let _ = request.args().decode::<Value>();
        let _ = request.context().request_id();
    }
    let _ = wire::reply_address(Codec::MsgPack, &body);
});

use rpc_core::endpoint;

#[endpoint]
struct Api;

fn main() {}

use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
unsafe impl Api {
    async fn ping(&self, _ctx: &Context) {}
}

#[endpoint]
unsafe trait Unsafe {
    async fn ping(&self, _ctx: &Context);
}

#[endpoint]
auto trait Marker {}

fn main() {}

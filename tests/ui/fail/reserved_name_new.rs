use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn new(&self, _ctx: &Context) {}
    async fn cast(&self, _ctx: &Context) {}
    // The stub's own `ApiClient::describe()` and `stub.clone()` would call these.
    async fn describe(&self, _ctx: &Context) {}
    async fn clone(&self, _ctx: &Context) {}
}

fn main() {}

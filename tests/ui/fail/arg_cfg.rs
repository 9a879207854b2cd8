use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn put(&self, _ctx: &Context, #[cfg(any())] extra: u32, _item: String) {}
}

fn main() {}

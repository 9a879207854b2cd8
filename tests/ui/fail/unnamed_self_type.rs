use rpc_core::{endpoint, Context};

#[endpoint]
impl (u8, u8) {
    async fn ping(&self, _ctx: &Context) {}
}

fn main() {}

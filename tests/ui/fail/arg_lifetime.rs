use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn greet(&self, _ctx: &Context, name: std::borrow::Cow<'static, str>) {}
}

fn main() {}

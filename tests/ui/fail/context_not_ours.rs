use rpc_core::endpoint;

mod app {
    pub struct Context;
}

struct Api;

#[endpoint]
impl Api {
    async fn status(&self, _ctx: &app::Context) {}
}

fn main() {}

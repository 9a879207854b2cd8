use rpc_core::{endpoint, Context};

#[derive(serde::Serialize, serde::Deserialize)]
struct Api;

#[endpoint]
impl Api {
    async fn copy(&self, _ctx: &Context) -> Self {
        Api
    }
}

fn main() {}

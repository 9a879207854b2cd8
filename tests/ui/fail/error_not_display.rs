use rpc_core::{endpoint, Context};

struct Api;

#[derive(serde::Serialize, serde::Deserialize)]
struct Oops;

#[endpoint]
impl Api {
    async fn risky(&self, _ctx: &Context) -> Result<u32, Oops> {
        Err(Oops)
    }
}

fn main() {}

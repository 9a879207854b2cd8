use rpc_core::{endpoint, Context};

struct Api;

#[derive(serde::Serialize, serde::Deserialize)]
struct Result<T>(T);

#[endpoint]
impl Api {
    async fn risky(&self, _ctx: &Context) -> Result<u32> {
        Result(1)
    }
}

fn main() {}

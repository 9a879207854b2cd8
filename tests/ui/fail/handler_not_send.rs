use rpc_core::{endpoint, Context};

struct Api;

#[endpoint]
impl Api {
    async fn hold(&self, _ctx: &Context) {
        let counter = std::rc::Rc::new(1);
        tokio::task::yield_now().await;
        drop(counter);
    }
}

fn main() {}

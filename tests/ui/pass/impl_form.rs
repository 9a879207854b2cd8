//! The impl form: a call and a cast through the generated stub, on memory.

use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, Server, Target, endpoint};

struct Counter {
    step: u64,
}

#[endpoint(namespace = "count", version = "1.2")]
impl Counter {
    /// Adds the step.
    async fn next(&self, _ctx: &Context, from: u64) -> u64 {
        from + self.step
    }

    async fn ping(&self, _ctx: &Context) {}

    #[rpc(since = "1.1")]
    async fn describe(&self, ctx: &Context, verbose: Option<bool>) -> Result<String, String> {
        match verbose {
            Some(true) => Ok(format!("step {} for {:?}", self.step, ctx.request_id())),
            Some(false) => Ok(self.step.to_string()),
            None => Err("say how verbose".to_owned()),
        }
    }
}

#[tokio::main]
async fn main() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("counter", "a"))
        .endpoint(Counter { step: 2 })
        .build()
        .unwrap();
    server.start().await.unwrap();
    let counter = CounterClient::new(Client::new(transport, Target::topic("counter")));
    let ctx = Context::new();
    assert_eq!(counter.next(&ctx, 40).await.unwrap(), 42);
    counter.ping(&ctx).await.unwrap();
    counter.cast().ping(&ctx).await.unwrap();
    assert_eq!(counter.describe(&ctx, Some(false)).await.unwrap(), Ok("2".to_owned()));
    assert_eq!(counter.describe(&ctx, None).await.unwrap(), Err("say how verbose".to_owned()));
    let _: &Client = counter.client();
    server.stop();
    server.wait().await;
}

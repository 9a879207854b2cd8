//! Fallibility is the compiler's call, not the macro's: a local type named
//! `Result` is a plain result, and an alias of `core::result::Result` is
//! fallible however it is named.

use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, Error, Server, Target, endpoint};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Result<T>(T);

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Oops;

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops")
    }
}

type ApiResult<T> = core::result::Result<T, Oops>;

struct Api;

#[endpoint]
impl Api {
    async fn plain(&self, _ctx: &Context) -> Result<u32> {
        Result(1)
    }

    async fn aliased(&self, _ctx: &Context) -> ApiResult<u32> {
        Err(Oops)
    }
}

#[tokio::main]
async fn main() -> core::result::Result<(), Error> {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("api", "a"))
        .endpoint(Api)
        .build()?;
    server.start().await?;
    let api = ApiClient::new(Client::new(transport, Target::topic("api")));
    let ctx = Context::new();
    assert_eq!(api.plain(&ctx).await?, Result(1));
    assert_eq!(api.aliased(&ctx).await?, Err(Oops));
    server.stop();
    server.wait().await;
    Ok(())
}

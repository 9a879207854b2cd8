//! Private argument and result types, and a deprecated method, compile
//! without a warning in the generated code: a deprecated method warns its
//! stub's callers, not the dispatch.
#![deny(warnings)]

use rpc_core::{Context, endpoint};

#[derive(serde::Serialize, serde::Deserialize)]
struct Job(u32);

/// A public endpoint whose methods take a private type.
pub struct Api;

#[endpoint]
impl Api {
    async fn run(&self, _ctx: &Context, job: Job) -> Job {
        job
    }

    #[deprecated = "use run"]
    async fn start(&self, _ctx: &Context) {}
}

fn main() {
    let _ = <ApiClient>::run;
}

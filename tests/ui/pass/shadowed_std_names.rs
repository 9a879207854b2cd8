//! Local items named like the prelude's do not confuse generated code; a
//! `Result` alias is still treated as fallible.
#![allow(dead_code)]

use rpc_core::{Context, endpoint};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Denied;

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("denied")
    }
}

type Result<T> = std::result::Result<T, Denied>;
struct Option;
struct Some;
struct None;
struct Box;
struct Send;
struct Clone;
struct Debug;
mod core {}
mod serde_json {}

struct Api;

#[endpoint]
impl Api {
    async fn check(&self, _ctx: &Context, allowed: bool) -> Result<u8> {
        if allowed { Ok(1) } else { Err(Denied) }
    }
}

fn main() {
    let _ = <ApiClient>::new;
}

//! What a request is made of on the command line: its target, its
//! arguments (`--args JSON`, `--arg k=v`, `--arg k:=JSON`) and its context.

use clap::Args;
use rpc_core::{Client, Context, Target, Transport, Value, Version};
use serde_json::Map;

use crate::connect::Global;
use crate::exit::Exit;

/// Where a request goes, and what it carries.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// The topic (servers compete for requests on it).
    pub(crate) topic: String,
    /// The method.
    pub(crate) method: String,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// The arguments, a JSON object of name to value.
    #[arg(long, value_name = "JSON")]
    pub(crate) args: Option<String>,
    /// One argument: `name=text` (a string) or `name:=JSON` (any JSON value);
    /// repeat it. Applied after `--args`.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub(crate) arg: Vec<String>,
    /// The request context, a JSON object (oslo's `RequestContext`: `roles`,
    /// `project_id`, `request_id`...).
    #[arg(long, value_name = "JSON")]
    pub(crate) context: Option<String>,
}

/// The target fields of a request.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Sends to this server only (`topic.server`).
    #[arg(long, value_name = "NAME")]
    pub(crate) server: Option<String>,
    /// The endpoint's namespace (e.g. `control`); none by default.
    #[arg(long, value_name = "NAME")]
    pub(crate) namespace: Option<String>,
    /// The API version asked for, e.g. `2.0`; none by default (servers read 1.0).
    #[arg(long, value_name = "X.Y")]
    pub(crate) version: Option<String>,
    /// The exchange; the transport's control exchange by default.
    #[arg(long, value_name = "NAME")]
    pub(crate) exchange: Option<String>,
}

impl TargetArgs {
    /// The target on `topic`.
    pub(crate) fn target(&self, topic: &str) -> Result<Target, Exit> {
        let mut target = match &self.server {
            Some(server) => Target::server(topic, server),
            None => Target::topic(topic),
        };
        if let Some(namespace) = &self.namespace {
            target = target.with_namespace(namespace);
        }
        if let Some(version) = &self.version {
            let version: Version = version
                .parse()
                .map_err(|error| Exit::Usage(format!("--version {version}: {error}")))?;
            target = target.with_version(version);
        }
        if let Some(exchange) = &self.exchange {
            target = target.with_exchange(exchange);
        }
        Ok(target)
    }
}

impl RequestArgs {
    /// A client of the request's target, on `transport`, in `--codec`.
    pub(crate) fn client(&self, global: &Global, transport: Transport) -> Result<Client, Exit> {
        Ok(Client::new(transport, self.target.target(&self.topic)?).codec(global.codec.into()))
    }

    /// The arguments, a JSON object.
    pub(crate) fn arguments(&self) -> Result<Value, Exit> {
        let mut arguments = match &self.args {
            Some(json) => object("--args", json)?,
            None => Map::new(),
        };
        for arg in &self.arg {
            // The first `=` ends the name: `q=a:=b` is the text `a:=b`.
            let Some((name, value)) = arg.split_once('=') else {
                return Err(Exit::Usage(format!("--arg {arg}: expected NAME=TEXT or NAME:=JSON")));
            };
            let (name, value) = match name.strip_suffix(':') {
                Some(name) => {
                    let value = serde_json::from_str(value).map_err(|error| {
                        Exit::Usage(format!("--arg {arg}: the value after `:=` is not JSON: {error}"))
                    })?;
                    (name, value)
                }
                None => (name, Value::String(value.to_owned())),
            };
            if name.is_empty() {
                return Err(Exit::Usage(format!("--arg {arg}: the argument has no name")));
            }
            arguments.insert(name.to_owned(), value);
        }
        Ok(Value::Object(arguments))
    }

    /// The context.
    pub(crate) fn context(&self) -> Result<Context, Exit> {
        match &self.context {
            Some(json) => Ok(Context::from(object("--context", json)?)),
            None => Ok(Context::new()),
        }
    }
}

/// `json` as a JSON object, or a usage error naming `option`.
pub(crate) fn object(option: &str, json: &str) -> Result<Map<String, Value>, Exit> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Exit::Usage(format!(
            "{option} must be a JSON object, like '{{\"name\": \"value\"}}', not {other}"
        ))),
        Err(error) => Err(Exit::Usage(format!("{option} is not JSON: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(given: &[&str]) -> Result<Value, Exit> {
        let request = RequestArgs {
            topic: "t".to_owned(),
            method: "m".to_owned(),
            target: TargetArgs {
                server: None,
                namespace: None,
                version: None,
                exchange: None,
            },
            args: None,
            arg: given.iter().map(|arg| (*arg).to_owned()).collect(),
            context: None,
        };
        request.arguments()
    }

    #[test]
    fn the_first_equals_sign_ends_the_name() {
        let given = arguments(&["q=a:=b", "ratio=1:=2", "n:=3", "list:=[1, \"a=b\"]", "empty="]).unwrap();
        assert_eq!(
            given,
            serde_json::json!({"q": "a:=b", "ratio": "1:=2", "n": 3, "list": [1, "a=b"], "empty": ""})
        );
        assert!(matches!(arguments(&["n:=x=1"]), Err(Exit::Usage(_))));
        assert!(matches!(arguments(&[":=1"]), Err(Exit::Usage(_))));
    }
}

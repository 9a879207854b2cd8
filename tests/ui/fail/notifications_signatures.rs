use rpc_core::notifications;
use rpc_core::notify::Notification;

struct Audit;

#[notifications]
impl Audit {
    fn info(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    async fn warn(_notification: &Notification, _payload: rpc_core::Value) {}

    async fn error(&mut self, _notification: &Notification, _payload: rpc_core::Value) {}

    async fn critical(&self, _payload: rpc_core::Value) {}

    async fn debug(&self, _notification: Notification, _payload: rpc_core::Value) {}

    async fn audit(&self, _notification: &Notification, _payload: &str) {}

    async fn sample<T>(&self, _notification: &Notification, _payload: rpc_core::Value) {}
}

fn main() {}

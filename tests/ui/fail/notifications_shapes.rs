use rpc_core::notifications;
use rpc_core::notify::Notification;

struct Generic<T>(T);

#[notifications]
impl<T: Send + Sync + 'static> Generic<T> {
    async fn info(&self, _notification: &Notification, _payload: rpc_core::Value) {}
}

#[notifications]
trait GenericTrait<T> {
    async fn info(&self, notification: &Notification, payload: rpc_core::Value);
}

#[notifications]
trait Handlers {
    async fn warn(&self, notification: &mut Notification, payload: rpc_core::Value);

    async fn error();

    #[on(debug, event_type = "audit.new")]
    async fn new(&self, notification: &Notification, payload: rpc_core::Value);

    #[on(audit, event_type = "audit.notifier")]
    async fn notifier(&self, notification: &Notification, payload: rpc_core::Value);
}

fn main() {}

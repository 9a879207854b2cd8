//! Test suites shared by every transport.
//!
//! [`conformance`] holds the transport conformance suite, written once;
//! [`conformance_tests!`] instantiates it for one transport as a set of
//! `#[tokio::test]`s (see `tests/memory.rs`).

pub mod api;
pub mod broker;
pub mod conformance;
pub mod hostile;
pub mod interop;
pub mod logs;
pub mod passthrough;
pub mod private_broker;
pub mod process;
pub mod prometheus;
pub mod proxy;
pub mod raw;
pub mod upgrade;
pub mod worker;

use std::time::{Duration, Instant};

/// Waits until `condition` holds, checking every 10 ms; panics with `what`
/// (and what `condition` last said) after `within`.
pub async fn eventually<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> Result<(), T>,
) {
    let deadline = Instant::now() + within;
    loop {
        let last = match condition() {
            Ok(()) => return,
            Err(last) => last,
        };
        assert!(Instant::now() < deadline, "{what} within {within:?}: {last:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls `$callback!($($args)* ; scenario, scenario, ...)` with every
/// scenario of the conformance suite (`conformance.rs`), so that the list is
/// written once.
#[macro_export]
macro_rules! with_conformance_scenarios {
    ($callback:path; $($args:tt)*) => {
        $callback!($($args)*;
            call_returns_result,
            a_call_may_wait_forever,
            call_carries_context,
            optional_argument_may_be_absent,
            cast_runs_without_reply,
            prepare_overrides_without_touching_original,
            server_pinning,
            fanout_cast_reaches_every_server,
            load_spreads_across_servers,
            a_topic_queue_is_shared_across_exchanges,
            namespace_and_version_selection,
            no_such_method_and_unsupported_version,
            invalid_arguments_are_typed_errors,
            untyped_client_reaches_typed_server,
            application_errors_are_typed,
            panicking_handler_keeps_server_serving,
            ping_answers_pong_when_enabled,
            call_to_unknown_topic_fails_fast,
            unroutable_requests_among_routable_ones,
            call_times_out_when_no_server_takes_it,
            slow_method_times_out_and_late_reply_is_dropped,
            call_monitor_keeps_long_call_alive,
            call_monitor_detects_silent_server,
            version_cap_refuses_locally,
            fanout_call_is_refused,
            stop_and_wait_finish_work_in_flight,
            stop_with_500_calls_in_flight_answers_them_all,
            sequential_executor_runs_one_at_a_time,
            server_can_restart,
            server_needs_topic_and_server_name,
            concurrent_calls,
            notifications_arrive_with_every_field,
            notifications_wait_for_their_first_listener,
            pools_each_get_every_notification,
            notifications_share_queues_across_exchanges,
            large_notifications_are_handled,
            typed_handlers_by_event_type,
            filters_pick_notifications,
            requeue_delivers_again,
            copies_of_a_notification_are_handled_once,
            batch_listener_gets_batches,
            batch_listener_without_a_timeout,
            a_failing_notification_does_not_cost_its_batch,
            a_handler_panicking_before_its_future_is_caught,
            a_notification_requeued_forever_does_not_starve_the_others,
            typed_notifier_from_a_trait,
            notifier_drivers,
            notification_listener_settings_are_checked,
            health_follows_the_notification_listener,
            handler_stops_at_the_callers_deadline,
            servers_may_let_handlers_finish,
            expired_requests_never_start,
            a_call_chain_shares_deadline_ids_and_trace,
            a_stopped_handler_answers_deadline_exceeded,
            timeouts_tell_what_happened,
            a_dropped_call_cancels_its_handler,
            a_call_given_up_on_a_silent_server_is_cancelled,
            a_call_dropped_as_it_is_sent_is_cancelled,
            policy_refuses_with_a_typed_error,
            layers_run_in_the_order_added,
            limits_per_method,
            health_follows_the_server,
        );
    };
}

/// Instantiates the conformance suite for a transport: one `#[tokio::test]`
/// per scenario. `$connect` is an expression of type `fn() -> F` where `F`
/// is a future returning a fresh `rpc_core::Transport` on the transport
/// under test; every call stands for a separate process on the same bus.
#[macro_export]
macro_rules! conformance_tests {
    ($connect:expr) => {
        $crate::with_conformance_scenarios!($crate::conformance_tests; @tests $connect);
    };
    (@tests $connect:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name($connect).await;
            }
        )*
    };
}

/// Runs every conformance scenario, one after the other, inside one test:
/// for a transport whose broker the test starts once (a RabbitMQ 4 node).
/// A failing scenario does not stop the run; the failures are told again at
/// its end (see [`SuiteRun`]).
#[macro_export]
macro_rules! run_conformance {
    ($connect:expr) => {
        $crate::with_conformance_scenarios!($crate::run_conformance; @run $connect)
    };
    (@run $connect:expr; $($name:ident),* $(,)?) => {{
        let mut run = $crate::SuiteRun::default();
        $(
            // Boxed: the test's own future holds a pointer, not the largest
            // scenario's state (in a debug build, enough to overflow the
            // test thread's stack as scenarios grew).
            run.scenario(
                concat!("conformance::", stringify!($name)),
                ::std::boxed::Box::pin($crate::conformance::$name($connect)),
            )
            .await;
        )*
        run.finish();
    }};
}

/// Many scenarios run inside one test. Each one's panic is caught and the
/// run goes on; [`SuiteRun::finish`] then fails the test with every failed
/// scenario and its message, as the last lines of the test's output, where
/// a log cut to its head and tail still shows them (the intended panics of
/// some scenarios print backtraces that would bury a failure in the middle).
#[derive(Debug, Default)]
pub struct SuiteRun {
    failures: Vec<String>,
}

impl SuiteRun {
    /// Runs one scenario, catching its panic.
    pub async fn scenario(&mut self, name: &str, scenario: impl std::future::Future<Output = ()>) {
        use futures_util::FutureExt;
        eprintln!("{name}");
        record_panic_locations();
        LAST_PANIC.with_borrow_mut(|last| *last = None);
        let started = std::time::Instant::now();
        if let Err(panic) = std::panic::AssertUnwindSafe(scenario).catch_unwind().await {
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            // `resume_unwind` (re-raising a task's panic, say) skips the hook.
            let at = LAST_PANIC
                .with_borrow_mut(Option::take)
                .unwrap_or_else(|| "a place the panic hook did not see".to_owned());
            let elapsed = started.elapsed();
            self.failures
                .push(format!("{name} failed after {elapsed:.1?}, at {at}: {message}"));
        }
    }

    /// Fails the test if a scenario failed, naming each one; without a
    /// panic hook's backtrace, so that the names are the output's last lines.
    pub fn finish(self) {
        if self.failures.is_empty() {
            return;
        }
        let report = format!(
            "{} scenarios failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        eprintln!("{report}");
        std::panic::resume_unwind(Box::new(report));
    }
}

thread_local! {
    /// Where this thread last panicked: the scenarios run on the test's
    /// thread, so its last panic is the one a scenario's failure unwound from.
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once, a panic hook that notes each panic's location for
/// [`SuiteRun`], then does what the hook before it did.
fn record_panic_locations() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(location) = info.location() {
                LAST_PANIC.with_borrow_mut(|last| *last = Some(location.to_string()));
            }
            previous(info);
        }));
    });
}

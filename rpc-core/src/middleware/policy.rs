//! [`Policy`]: who may call what, from the caller's context, as
//! oslo.policy decides it for OpenStack services.

use std::fmt;
use std::sync::Arc;

use super::by_method::ByMethod;
use super::throttle::{Throttle, bounded};
use super::{Middleware, Next};
use crate::endpoint::HandlerFuture;
use crate::message::Request;
use crate::{ErrorCode, RemoteError};

/// The module of oslo.policy's refusal, so Python callers see their own class.
const POLICY_MODULE: &str = "oslo_policy.policy";

/// Refuses requests whose caller's context does not satisfy the rule for
/// their method, with [`ErrorCode::Forbidden`] (oslo.policy's
/// `PolicyNotAuthorized`, which Python callers see as such).
///
/// Rules are looked up by `namespace:method` first (for a method in a
/// namespace), then by method name, then the default rule. The context is
/// the one oslo's `RequestContext` sends: `roles`, `is_admin`,
/// `project_id`, `user_id`.
///
/// ```
/// use rpc_core::middleware::{Policy, Rule};
///
/// let policy = Policy::new(Rule::role("member"))
///     .rule("delete", Rule::admin())
///     .rule("control:stop", Rule::any([Rule::admin(), Rule::role("operator")]));
/// ```
#[derive(Clone)]
pub struct Policy {
    /// Rules by `method` or `namespace:method`.
    rules: ByMethod<Rule>,
    default: Rule,
    refusals: Arc<Throttle>,
}

/// How many of a refused caller's roles its log line shows.
const SHOWN_ROLES: usize = 16;
/// How many characters of a name its log line shows.
const SHOWN_CHARS: usize = 128;

impl Policy {
    /// A policy whose methods without a rule of their own need `default`.
    pub fn new(default: Rule) -> Policy {
        Policy {
            rules: ByMethod::default(),
            default,
            refusals: Arc::default(),
        }
    }

    /// The rule for `method`: a method name, or `namespace:method`.
    pub fn rule(mut self, method: impl Into<String>, rule: Rule) -> Policy {
        self.rules.insert(method.into(), rule);
        self
    }

    /// The rule that applies to `request`, and whether it was the one of
    /// its namespace.
    fn rule_for(&self, request: &Request) -> (&Rule, bool) {
        self.rules.find(request).unwrap_or((&self.default, false))
    }
}

impl Middleware for Policy {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        let (rule, namespaced) = self.rule_for(request);
        if rule.allows(request) {
            return next.run(request);
        }
        let name = match request.namespace() {
            Some(namespace) if namespaced => format!("{namespace}:{}", request.method()),
            _ => request.method().to_owned(),
        };
        if let Some(unlogged) = self.refusals.admit() {
            // Fields a peer wrote, cut: one message could hold megabytes of roles.
            let roles = request.context().roles();
            let shown: Vec<&str> = roles
                .iter()
                .take(SHOWN_ROLES)
                .map(|role| bounded(role, SHOWN_CHARS))
                .collect();
            tracing::warn!(
                method = request.method(),
                user = bounded(request.context().user().unwrap_or(""), SHOWN_CHARS),
                project = bounded(request.context().project().unwrap_or(""), SHOWN_CHARS),
                roles = ?shown,
                role_count = roles.len(),
                unlogged,
                "the policy refuses a request (refusals are logged once a second at most: `unlogged` since the last)"
            );
        }
        let refusal = RemoteError::new(
            ErrorCode::Forbidden,
            "PolicyNotAuthorized",
            format!("Policy doesn't allow {name} to be performed."),
        )
        .with_module(POLICY_MODULE);
        Box::pin(std::future::ready(Err(refusal)))
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("rules", &self.rules)
            .field("default", &self.default)
            .finish()
    }
}

/// What a caller's context must satisfy; see [`Policy`].
#[derive(Clone)]
pub struct Rule(Check);

#[derive(Clone)]
enum Check {
    Allow,
    Deny,
    Role(String),
    Admin,
    Project(String),
    Any(Vec<Rule>),
    All(Vec<Rule>),
    Custom(Arc<dyn Fn(&Request) -> bool + Send + Sync>),
}

impl Rule {
    /// Everybody (oslo.policy's `@`).
    pub fn allow() -> Rule {
        Rule(Check::Allow)
    }

    /// Nobody (oslo.policy's `!`).
    pub fn deny() -> Rule {
        Rule(Check::Deny)
    }

    /// Callers with the role `role` (oslo.policy's `role:<role>`), compared
    /// without case, as oslo.policy does.
    pub fn role(role: impl Into<String>) -> Rule {
        Rule(Check::Role(role.into()))
    }

    /// Callers whose context says `is_admin` (oslo.policy's `is_admin:True`).
    pub fn admin() -> Rule {
        Rule(Check::Admin)
    }

    /// Callers scoped to the project `project` (`project_id:<id>`).
    pub fn project(project: impl Into<String>) -> Rule {
        Rule(Check::Project(project.into()))
    }

    /// Callers satisfying at least one of `rules` (`or`).
    pub fn any(rules: impl IntoIterator<Item = Rule>) -> Rule {
        Rule(Check::Any(rules.into_iter().collect()))
    }

    /// Callers satisfying every one of `rules` (`and`).
    pub fn all(rules: impl IntoIterator<Item = Rule>) -> Rule {
        Rule(Check::All(rules.into_iter().collect()))
    }

    /// Requests for which `check` returns `true`: any test of the context
    /// or the arguments (the request's owner, say).
    pub fn check(check: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Rule {
        Rule(Check::Custom(Arc::new(check)))
    }

    /// Whether `request` satisfies the rule.
    pub fn allows(&self, request: &Request) -> bool {
        let context = request.context();
        match &self.0 {
            Check::Allow => true,
            Check::Deny => false,
            // Read in place: collecting them cost an allocation per rule.
            Check::Role(role) => context.role_names().any(|have| have.eq_ignore_ascii_case(role)),
            Check::Admin => context.is_admin(),
            Check::Project(project) => context.project() == Some(project.as_str()),
            Check::Any(rules) => rules.iter().any(|rule| rule.allows(request)),
            Check::All(rules) => rules.iter().all(|rule| rule.allows(request)),
            Check::Custom(check) => check(request),
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Check::Allow => f.write_str("@"),
            Check::Deny => f.write_str("!"),
            Check::Role(role) => write!(f, "role:{role}"),
            Check::Admin => f.write_str("is_admin:True"),
            Check::Project(project) => write!(f, "project_id:{project}"),
            Check::Any(rules) => join(f, rules, " or "),
            Check::All(rules) => join(f, rules, " and "),
            Check::Custom(_) => f.write_str("(check)"),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, rules: &[Rule], with: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, rule) in rules.iter().enumerate() {
        if i > 0 {
            f.write_str(with)?;
        }
        write!(f, "{rule:?}")?;
    }
    f.write_str(")")
}

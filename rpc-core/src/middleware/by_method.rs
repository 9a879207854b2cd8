//! Settings by method name, as `Policy` and the limits take them: a method
//! (`delete`, in any namespace) or a namespace's method (`control:stop`).

use std::collections::HashMap;
use std::fmt;

use crate::message::Request;

/// Values by `method` or `namespace:method`, looked up by a request's own
/// names: no allocation per request.
#[derive(Clone)]
pub(super) struct ByMethod<T> {
    /// By method name, each for a namespace (`None`: any namespace).
    methods: HashMap<String, Vec<(Option<String>, T)>>,
}

impl<T> Default for ByMethod<T> {
    fn default() -> Self {
        ByMethod {
            methods: HashMap::new(),
        }
    }
}

impl<T> ByMethod<T> {
    /// Sets the value for `name`: a method, or `namespace:method`.
    pub(super) fn insert(&mut self, name: String, value: T) {
        let (namespace, method) = match name.rsplit_once(':') {
            Some((namespace, method)) => (Some(namespace.to_owned()), method.to_owned()),
            None => (None, name),
        };
        let values = self.methods.entry(method).or_default();
        values.retain(|(known, _)| *known != namespace);
        values.push((namespace, value));
    }

    /// The value for `request`: its namespace's first, then its method's in
    /// any namespace; with whether it was its namespace's.
    pub(super) fn find(&self, request: &Request) -> Option<(&T, bool)> {
        let values = self.methods.get(request.method())?;
        let of_namespace = request
            .namespace()
            .and_then(|namespace| values.iter().find(|(known, _)| known.as_deref() == Some(namespace)));
        if let Some((_, value)) = of_namespace {
            return Some((value, true));
        }
        values
            .iter()
            .find(|(known, _)| known.is_none())
            .map(|(_, value)| (value, false))
    }

    /// The names set, as given, sorted.
    pub(super) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .methods
            .iter()
            .flat_map(|(method, values)| {
                values.iter().map(move |(namespace, _)| match namespace {
                    Some(namespace) => format!("{namespace}:{method}"),
                    None => method.clone(),
                })
            })
            .collect();
        names.sort();
        names
    }
}

impl<T: fmt::Debug> fmt::Debug for ByMethod<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(&self.methods).finish()
    }
}

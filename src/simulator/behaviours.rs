//! Built-in behaviours, by the name a manifest gives in `simulator.behaviour`.
//!
//! A behaviour is a plain function from the validated call to a reply. A [`Family`] groups the
//! behaviours of one service with everything else that service needs beyond its manifest: its
//! per-server state, its behaviour options (`--set NAME=VALUE`), the headers it puts on every
//! response, extra fields of its error envelope, how it words authentication failures, and its
//! body limits. Families live in their own directory (`src/simulator/<service>/`) and are listed
//! in [`FAMILIES`]; a manifest opts into one by naming any of its behaviours. Nothing here looks
//! at an integration's name: a manifest that names no behaviour is served by [`super::generic`].

use std::any::Any;
use std::collections::BTreeMap;

use serde_json::Value;

use super::request::Call;
use super::server::Sim;
use super::wire::Reply;
use crate::manifest::Manifest;

/// One behaviour.
#[derive(Clone, Copy)]
pub struct Behaviour(pub fn(&Sim, &Call) -> Reply);

/// Per-server state of a family, created at start-up from its options.
pub type State = Box<dyn Any + Send + Sync>;

/// The behaviours of one service, and what that service adds to every response.
pub trait Family: Send + Sync {
    /// Behaviour names start with `<prefix>.`.
    fn prefix(&self) -> &'static str;
    /// Every behaviour, by its full name.
    fn behaviours(&self) -> &'static [(&'static str, Behaviour)];
    /// The options `--set NAME=VALUE` this family takes: `(name, meaning)`.
    fn options(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The state kept for the life of one server; `settings` are the `--set` options (only
    /// names from [`Family::options`]). A bad value is an error message.
    fn new_state(&self, seed: u64, settings: &BTreeMap<String, String>) -> Result<State, String>;
    /// Add the service's own fields to an error body (type and message are already written at
    /// the manifest's pointers).
    fn decorate_error(&self, _body: &mut Value, _rid: &str) {}
    /// Headers on every response (organization id, rate limits, ...).
    fn headers(&self, _sim: &Sim) -> Vec<(String, String)> {
        Vec::new()
    }
    /// How the service words authentication failures, and where else it accepts keys.
    fn auth(&self) -> &AuthStyle;
    /// The largest request body (bytes) a function with this behaviour takes (`true`: a
    /// multipart upload); larger ones are a 413.
    fn body_limit(&self, behaviour: Option<&str>, multipart: bool) -> usize;
    /// What an "overloaded" fault answers when it cannot be an event of a stream:
    /// `(status, error type or None for the manifest's type of that status, message)`.
    fn overloaded(&self) -> (u16, Option<&'static str>, &'static str) {
        (503, None, "Service Unavailable")
    }
}

pub struct AuthStyle {
    /// Headers that may carry the key besides the credential's own (`x-api-key`).
    pub key_headers: &'static [&'static str],
    /// Message of the 401 when no key was sent.
    pub missing: &'static str,
    /// Message of the 401 for a key that is not accepted.
    pub invalid: &'static str,
    /// Message of the 403 for a key of another kind.
    pub forbidden: &'static str,
    /// Message of the 400 for unknown beta names; `{names}` and `{header}` are filled in.
    pub unknown_beta: &'static str,
}

/// Every family the simulator knows.
pub static FAMILIES: &[&(dyn Family + 'static)] = &[&super::anthropic::Anthropic];

/// The behaviour with this exact name, in `family` only (a behaviour runs against its own
/// family's state).
pub fn lookup_in(family: &dyn Family, name: &str) -> Option<Behaviour> {
    family
        .behaviours()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

/// The behaviour with this exact name, in any family.
pub fn lookup(name: &str) -> Option<Behaviour> {
    FAMILIES.iter().find_map(|f| lookup_in(*f, name))
}

/// The family whose behaviours the manifest names, if any.
pub fn family_for(manifest: &Manifest) -> Option<&'static dyn Family> {
    let named: Vec<&str> = manifest
        .functions
        .values()
        .filter_map(|f| f.simulator.as_ref()?.behaviour.as_deref())
        .collect();
    FAMILIES.iter().copied().find(|fam| {
        named.iter().any(|n| {
            n.split_once('.')
                .is_some_and(|(prefix, _)| prefix == fam.prefix())
        })
    })
}

/// Every behaviour name, for docs and tests.
pub fn names() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.behaviours().iter().map(|(n, _)| *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn every_behaviour_the_builtin_manifests_name_exists() {
        let reg = Registry::builtin().unwrap();
        let mut families = 0;
        for integration in reg.iter() {
            let family = family_for(&integration.manifest);
            for (name, f) in &integration.manifest.functions {
                if let Some(b) = f.simulator.as_ref().and_then(|s| s.behaviour.as_deref()) {
                    let fam = family.unwrap_or_else(|| panic!("{name}: {b} has no family"));
                    assert!(lookup_in(fam, b).is_some(), "{name}: unknown behaviour {b}");
                }
            }
            families += usize::from(family.is_some());
        }
        assert!(families >= 1);
        assert!(names().len() >= 39);
    }
}

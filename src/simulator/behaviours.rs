//! Built-in behaviours, by the name a manifest gives in `simulator.behaviour`.
//!
//! A behaviour is a plain function from the validated call to a reply. Families group the
//! behaviours of one service with the envelope and headers that service puts on every response;
//! a manifest opts into a family by naming any of its behaviours. Nothing here looks at an
//! integration's name: a manifest that names no behaviour is served by [`super::generic`].

use serde_json::Value;

use super::request::Call;
use super::server::Sim;
use super::wire::Reply;
use crate::manifest::Manifest;

/// One behaviour.
#[derive(Clone, Copy)]
pub struct Behaviour(pub fn(&Sim, &Call) -> Reply);

/// The behaviours of one service, and what that service adds to every response.
pub struct Family {
    /// Behaviour names start with `<prefix>.`.
    pub prefix: &'static str,
    pub behaviours: &'static [(&'static str, Behaviour)],
    /// The full error body for `(type, message, request id)`.
    pub error_body: fn(&str, &str, &str) -> Value,
    /// Headers on every response (organization id, rate limits, ...).
    pub headers: fn(&Sim) -> Vec<(String, String)>,
    /// How the service words authentication failures, and where else it accepts keys.
    pub auth: AuthStyle,
    /// The largest request body (bytes) a function with this behaviour takes (`true`: a
    /// multipart upload); larger ones are a 413.
    pub body_limit: fn(Option<&str>, bool) -> usize,
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
pub const FAMILIES: &[&Family] = &[&super::anthropic::FAMILY];

/// The behaviour with this exact name.
pub fn lookup(name: &str) -> Option<Behaviour> {
    FAMILIES
        .iter()
        .flat_map(|f| f.behaviours.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

/// The family whose behaviours the manifest names, if any.
pub fn family_for(manifest: &Manifest) -> Option<&'static Family> {
    let named: Vec<&str> = manifest
        .functions
        .values()
        .filter_map(|f| f.simulator.as_ref()?.behaviour.as_deref())
        .collect();
    FAMILIES.iter().copied().find(|fam| {
        named.iter().any(|n| {
            n.split_once('.')
                .is_some_and(|(prefix, _)| prefix == fam.prefix)
        })
    })
}

/// Every behaviour name, for docs and tests.
pub fn names() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.behaviours.iter().map(|(n, _)| *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn every_behaviour_the_builtin_manifests_name_exists() {
        let reg = Registry::builtin().unwrap();
        for integration in reg.iter() {
            for (name, f) in &integration.manifest.functions {
                if let Some(b) = f.simulator.as_ref().and_then(|s| s.behaviour.as_deref()) {
                    assert!(lookup(b).is_some(), "{name}: unknown behaviour {b}");
                }
            }
        }
        let anthropic = &reg.require("anthropic").unwrap().manifest;
        assert_eq!(family_for(anthropic).map(|f| f.prefix), Some("anthropic"));
        assert!(names().len() >= 39);
    }
}

//! One integration-test binary (it links once): each module drives the real `kosmo` binary or
//! the library against servers the tests start on 127.0.0.1.

mod acceptance;
mod acceptance2;
mod acceptance3;
mod architecture;
mod caps;
mod cli;
mod configure;
mod docs;
mod envelope;
mod exec;
mod foundation;
mod guide;
mod hardening;
mod import;
mod integrations;
mod lua;
mod manifests;
mod registry_qa;
mod session;
mod simulator;
mod support;

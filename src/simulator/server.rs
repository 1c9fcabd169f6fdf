//! The accept loop and the request pipeline.
//!
//! Connections are served one by one with hyper (not a router framework) because one fault needs
//! to drop a connection mid-request with a TCP reset: each connection keeps a duplicate of its
//! socket so the kill switch can set `SO_LINGER 0` before the connection is dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::SimulatorOptions;
use super::behaviours::{Behaviour, Family, State};
use super::faults::{FaultPlan, Step};
use super::request::{self, Call};
use super::resources::Collections;
use super::router::{RouteMatch, RouteTable};
use super::wire::{self, Reply};
use super::{auth, behaviours, faults, generic, resources};
use crate::registry::Integration;
use crate::validate::InputValidator;

/// Everything one simulator knows; shared by all connections.
pub struct Sim {
    pub integration: Arc<Integration>,
    pub opts: SimulatorOptions,
    pub base_url: String,
    pub routes: RouteTable,
    pub faults: Mutex<FaultPlan>,
    /// The behaviour family the manifest names, if any.
    pub family: Option<&'static dyn Family>,
    /// That family's state (see [`Sim::state`]).
    state: Option<State>,
    /// The generic tier's collections, by resource.
    pub collections: Mutex<Collections>,
    /// Mock mode's validators (schemas without `enum`), by function.
    relaxed: Mutex<HashMap<String, Arc<InputValidator>>>,
}

/// Check the options against the integration: every `--key` names one of its credentials, every
/// `--set` an option of its behaviour family. Returns the family and its fresh state.
pub fn prepare(
    integration: &Integration,
    opts: &SimulatorOptions,
) -> Result<(Option<&'static dyn Family>, Option<State>), String> {
    let manifest = &integration.manifest;
    for name in opts.keys.keys() {
        if !manifest.credentials.contains_key(name) {
            let known: Vec<&str> = manifest.credentials.keys().map(String::as_str).collect();
            return Err(format!(
                "--key {name}=...: {} has no credential '{name}' (known: {})",
                manifest.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    let family = behaviours::family_for(manifest);
    let known: &[(&str, &str)] = family.map(|f| f.options()).unwrap_or(&[]);
    for name in opts.settings.keys() {
        if !known.iter().any(|(k, _)| k == name) {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "--set {name}=...: the {} simulator has no option '{name}' (known: {})",
                manifest.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    let state = match family {
        Some(f) => Some(f.new_state(opts.seed, &opts.settings)?),
        None => None,
    };
    Ok((family, state))
}

impl Sim {
    pub fn new(
        integration: Arc<Integration>,
        opts: SimulatorOptions,
        base_url: String,
        faults: FaultPlan,
    ) -> Result<Self, String> {
        let (family, state) = prepare(&integration, &opts)?;
        let routes = RouteTable::build(&integration.manifest);
        for (name, f) in &integration.manifest.functions {
            if let Some(b) = f.simulator.as_ref().and_then(|s| s.behaviour.as_deref())
                && family
                    .and_then(|fam| behaviours::lookup_in(fam, b))
                    .is_none()
            {
                tracing::warn!(
                    "simulator: {name} names unknown behaviour '{b}'; answering from its response example"
                );
            }
        }
        Ok(Sim {
            integration,
            opts,
            base_url,
            routes,
            faults: Mutex::new(faults),
            family,
            state,
            collections: Mutex::new(Collections::default()),
            relaxed: Mutex::new(HashMap::new()),
        })
    }

    /// Mock mode's validator of a function: its input schema without `enum` constraints.
    pub fn relaxed_validator(
        &self,
        lua_name: &str,
        f: &crate::manifest::Function,
    ) -> crate::error::Result<Arc<InputValidator>> {
        let mut cache = self.relaxed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = cache.get(lua_name) {
            return Ok(v.clone());
        }
        let relaxed = request::without_enums(f);
        let v = Arc::new(InputValidator::new(&self.integration.manifest, &relaxed)?);
        cache.insert(lua_name.to_string(), v.clone());
        Ok(v)
    }

    /// The behaviour family's state, as the type the family made it.
    pub fn state<T: 'static>(&self) -> Option<&T> {
        self.state.as_ref()?.downcast_ref::<T>()
    }

    /// The absolute URL of the function with this behaviour, its placeholders filled in order.
    pub fn url_of(&self, behaviour: &str, values: &[&str]) -> Option<String> {
        let (_, f) = self.integration.manifest.functions.iter().find(|(_, f)| {
            f.simulator.as_ref().and_then(|s| s.behaviour.as_deref()) == Some(behaviour)
        })?;
        let template = f.path.as_deref()?;
        let mut path = template.to_string();
        for (name, value) in crate::manifest::path_placeholders(template)
            .iter()
            .zip(values)
        {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        Some(format!("{}{}", self.base_url, path))
    }
}

/// Serve until `stop` fires (or its sender is dropped).
pub async fn run(listener: TcpListener, sim: Arc<Sim>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, sim.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!("simulator: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve_connection(stream: TcpStream, sim: Arc<Sim>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let kill_handle = KillHandle::new(&stream);
    let kill = Arc::new(Notify::new());
    let svc_kill = kill.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let sim = sim.clone();
        let kill = svc_kill.clone();
        async move { Ok::<_, Infallible>(handle(sim, req.map(Body::new), kill).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => kill_handle.reset(),
        _ = stop.changed() => {}
    }
}

/// A second handle on a connection's socket, so a fault can turn its close into a reset.
struct KillHandle {
    #[cfg(unix)]
    fd: Option<std::os::fd::OwnedFd>,
}

impl KillHandle {
    fn new(stream: &TcpStream) -> Self {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            KillHandle {
                fd: stream.as_fd().try_clone_to_owned().ok(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            KillHandle {}
        }
    }

    /// Linger 0: the close that follows sends RST instead of FIN.
    fn reset(&self) {
        #[cfg(unix)]
        if let Some(fd) = &self.fd {
            let _ = socket2::SockRef::from(fd).set_linger(Some(Duration::ZERO));
        }
    }
}

/// One request, start to end: route, fault, auth, headers, validation, behaviour, fault again.
async fn handle(sim: Arc<Sim>, req: Request<Body>, kill: Arc<Notify>) -> Response<Body> {
    let rid = wire::request_id();
    if sim.opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sim.opts.latency_ms)).await;
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path.starts_with(faults::CONTROL_PREFIX) {
        let text = body_text(body).await.unwrap_or_default();
        return wire::respond(
            &sim,
            faults::control(&sim, &parts.method, &path, &text),
            &rid,
        );
    }
    let route = match sim.routes.find(&parts.method, &path) {
        RouteMatch::Found(route, params) => (route.function.clone(), params),
        RouteMatch::WrongMethod => {
            return early(
                &sim,
                Reply::status(
                    405,
                    format!("Method {} not allowed for {path}", parts.method),
                ),
                body,
                &rid,
            )
            .await;
        }
        RouteMatch::NotFound => {
            return early(&sim, Reply::not_found("Not Found"), body, &rid).await;
        }
    };
    let (function, path_params) = route;
    tracing::info!(request_id = %rid, "simulator: {} {path} -> {function}", parts.method);
    let step = match faults::step_for(&sim, &function, &parts.headers) {
        Ok(step) => step,
        Err(message) => {
            return early(&sim, Reply::invalid(message), body, &rid).await;
        }
    };
    match &step {
        Some(Step::Reset) => {
            kill.notify_one();
            return std::future::pending().await;
        }
        Some(Step::Stall { ms: None }) => return std::future::pending().await,
        Some(Step::Stall { ms: Some(ms) }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Some(s) => {
            if let Some(reply) = faults::before(&sim, s) {
                return early(&sim, reply, body, &rid).await;
            }
        }
        None => {}
    }
    let Some((lua_name, f)) = sim.integration.function(&function) else {
        return early(&sim, Reply::not_found("Not Found"), body, &rid).await;
    };
    let checked = auth::check(&sim, f, &parts.headers, parts.uri.query());
    let betas = match checked {
        Ok(betas) => betas,
        Err(reply) => return early(&sim, reply, body, &rid).await,
    };
    let call = match request::build(&sim, lua_name, f, path_params, &parts, body, betas).await {
        Ok(call) => call,
        Err(reply) => return wire::respond(&sim, reply, &rid),
    };
    let reply = dispatch(&sim, &call);
    let reply = match &step {
        Some(s) => faults::after(&sim, s, reply, &rid),
        None => reply,
    };
    wire::respond(&sim, reply, &rid)
}

/// An answer before the request body was read: read what the client is still sending (an
/// upload, say) first. A response while the body is unread ends with a closed connection, and
/// the client would see a connection error instead of the answer (a 401, a 429).
async fn early(sim: &Sim, reply: Reply, body: Body, rid: &str) -> Response<Body> {
    request::drain(body).await;
    wire::respond(sim, reply, rid)
}

async fn body_text(body: Body) -> Option<String> {
    axum::body::to_bytes(body, 1 << 20)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The function's behaviour (from the manifest's family), else its declared resource, else its
/// example. In mock mode a behaviour's refusal of a well-formed request (an unknown id, a state
/// or a combination it does not allow) becomes the function's example answer instead.
fn dispatch(sim: &Sim, call: &Call) -> Reply {
    let named = call
        .f
        .simulator
        .as_ref()
        .and_then(|s| s.behaviour.as_deref())
        .and_then(|b| behaviours::lookup_in(sim.family?, b));
    match named {
        Some(Behaviour(handler)) => {
            let reply = handler(sim, call);
            if sim.opts.mock && is_refusal(&reply) {
                generic::answer(sim, call)
            } else {
                reply
            }
        }
        None if resources::applies(call.f) => resources::answer(sim, call),
        None => generic::answer(sim, call),
    }
}

fn is_refusal(reply: &Reply) -> bool {
    matches!(reply, Reply::Error { status, .. } if matches!(status, 400 | 404 | 409 | 422))
}

//! The accept loop and the request pipeline.
//!
//! Connections are served one by one with hyper (not a router framework) because one fault needs
//! to drop a connection mid-request with a TCP reset: each connection keeps a duplicate of its
//! socket so the kill switch can set `SO_LINGER 0` before the connection is dropped.

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
use super::anthropic::Store;
use super::behaviours::{Behaviour, Family};
use super::faults::{FaultPlan, Step};
use super::request::{self, Call};
use super::router::{RouteMatch, RouteTable};
use super::wire::{self, Reply};
use super::{auth, behaviours, faults, generic};
use crate::registry::Integration;

/// Everything one simulator knows; shared by all connections.
pub struct Sim {
    pub integration: Arc<Integration>,
    pub opts: SimulatorOptions,
    pub base_url: String,
    pub routes: RouteTable,
    pub faults: Mutex<FaultPlan>,
    pub family: Option<&'static Family>,
    pub store: Mutex<Store>,
}

impl Sim {
    pub fn new(
        integration: Arc<Integration>,
        opts: SimulatorOptions,
        base_url: String,
        faults: FaultPlan,
    ) -> Self {
        let routes = RouteTable::build(&integration.manifest);
        let family = behaviours::family_for(&integration.manifest);
        for (name, f) in &integration.manifest.functions {
            if let Some(b) = f.simulator.as_ref().and_then(|s| s.behaviour.as_deref())
                && behaviours::lookup(b).is_none()
            {
                tracing::warn!(
                    "simulator: {name} names unknown behaviour '{b}'; answering from its response example"
                );
            }
        }
        let store = Store::seeded(opts.seed);
        Sim {
            integration,
            opts,
            base_url,
            routes,
            faults: Mutex::new(faults),
            family,
            store: Mutex::new(store),
        }
    }

    /// The store, even if a handler panicked while holding it (the data is still usable).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
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
            return wire::respond(
                &sim,
                Reply::error(
                    405,
                    "invalid_request_error",
                    format!("Method {} not allowed for {path}", parts.method),
                ),
                &rid,
            );
        }
        RouteMatch::NotFound => {
            return wire::respond(
                &sim,
                Reply::error(404, "not_found_error", "Not Found"),
                &rid,
            );
        }
    };
    let (function, path_params) = route;
    tracing::info!(request_id = %rid, "simulator: {} {path} -> {function}", parts.method);
    let step = match faults::step_for(&sim, &function, &parts.headers) {
        Ok(step) => step,
        Err(message) => {
            return wire::respond(
                &sim,
                Reply::error(400, "invalid_request_error", message),
                &rid,
            );
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
                return wire::respond(&sim, reply, &rid);
            }
        }
        None => {}
    }
    let Some((lua_name, f)) = sim.integration.function(&function) else {
        return wire::respond(
            &sim,
            Reply::error(404, "not_found_error", "Not Found"),
            &rid,
        );
    };
    let checked = auth::check(&sim, f, &parts.headers);
    let betas = match checked {
        Ok(betas) => betas,
        Err(reply) => return wire::respond(&sim, reply, &rid),
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

async fn body_text(body: Body) -> Option<String> {
    axum::body::to_bytes(body, 1 << 20)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn dispatch(sim: &Sim, call: &Call) -> Reply {
    let named = call
        .f
        .simulator
        .as_ref()
        .and_then(|s| s.behaviour.as_deref())
        .and_then(behaviours::lookup);
    match named {
        Some(Behaviour(handler)) => handler(sim, call),
        None => generic::answer(sim, call),
    }
}

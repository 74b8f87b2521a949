//! The service wrapper: every service of a node runs inside a [`ServiceActor`], which
//!
//! - catches errors *and panics* of the service's start, handle and stop steps (actix supervises
//!   neither), answers the request that was in flight with a failure, reports the failure to
//!   the root and stops the actor, so that actix's `Supervisor` restarts it with the same address
//!   and a fresh state built by the service's factory;
//! - bounds the mailbox ([`limits::MAILBOX_CAPACITY`]): senders use `try_send` and get `BUSY`;
//! - after the root's `Stop`, refuses new requests with `SHUTTING_DOWN`.

use crate::bus::{limits, Bus, Deliver};
use crate::guard::guard;
use crate::wire::api::{code, Msg, MsgKind, ServiceEvent, ServiceId};
use actix::prelude::*;

/// What a service does. Each method may fail; a failure (or panic) restarts the service.
pub trait Service: Sized + Unpin + 'static {
    /// Runs when the service starts, and again after every restart (with a fresh state).
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String>;

    /// Handles a message delivered by a bus.
    fn handle(&mut self, d: Deliver, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let _ = ctx;
        not_taken(&d.env.dst.to_string(), &d);
        Ok(())
    }

    /// Another service of the node changed state.
    fn service_event(&mut self, ev: &ServiceEvent) -> Result<(), String> {
        let _ = ev;
        Ok(())
    }

    /// Releases what the service holds (sockets, threads); runs before a restart and at stop.
    fn stop(&mut self) {}
}

/// Answers a message that service `name` does not take (docs/API.md section 6): a request, or a
/// notification sent to it, gets failure `UNEXPECTED` naming the type; a reply is ignored (the
/// only replies a service gets unasked are the router's failures, e.g. `NO_ROUTE` for a
/// subscriber that left).
pub fn not_taken(name: &str, d: &Deliver) {
    let ty = d.env.msg.type_id();
    match d.env.msg.kind() {
        MsgKind::Request => d.bus.send(d.env.reply(Msg::failure(
            code::UNEXPECTED,
            format!("{name} does not handle request type {ty:#06x}"),
        ))),
        MsgKind::OneWay => d.bus.send_untracked(d.env.reply(Msg::failure(
            code::UNEXPECTED,
            format!("{name} takes no notification; type {ty:#06x} is one"),
        ))),
        MsgKind::Final | MsgKind::Progress => {}
    }
}

/// Lifecycle reports from a service to the root.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum Lifecycle {
    /// The service (re)started.
    Started(String),
    /// The service failed; it is restarting.
    Failed {
        /// Service name.
        name: String,
        /// Why.
        cause: String,
    },
}

/// Commands from the root (or the manager) to a service.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum Control {
    /// Panic inside this handler (fault injection).
    Crash {
        /// Who asked, for the panic message.
        requested_by: String,
    },
    /// A resource of the service failed outside its handlers (e.g. its socket thread died).
    Fail(String),
    /// Another service changed state.
    Event(ServiceEvent),
    /// Stop for good (node shutdown): release resources, refuse further requests.
    Stop,
}

/// The actor that runs a [`Service`] under supervision.
pub struct ServiceActor<S: Service> {
    name: String,
    factory: Box<dyn Fn() -> S>,
    inner: S,
    root: Recipient<Lifecycle>,
    /// The request being handled: answered with a failure if handling fails.
    in_flight: Option<(Bus, ServiceId, ServiceId, u64)>,
    /// Set by `Control::Stop`; never reset (a stopped service stays stopped).
    stopped: bool,
}

impl<S: Service> ServiceActor<S> {
    /// Starts a supervised service on the current arbiter; its address survives restarts.
    pub fn start(
        name: impl Into<String>,
        root: Recipient<Lifecycle>,
        factory: impl Fn() -> S + 'static,
    ) -> Addr<Self> {
        let name = name.into();
        Supervisor::start(move |_| ServiceActor {
            name,
            inner: factory(),
            factory: Box::new(factory),
            root,
            in_flight: None,
            stopped: false,
        })
    }

    fn fail(&mut self, cause: String, ctx: &mut Context<Self>) {
        if let Some((bus, handler, requester, id)) = self.in_flight.take() {
            let why = format!("{} failed while handling the request ({cause})", self.name);
            bus.fail_request(&handler, &requester, id, &why);
        }
        tracing::warn!(service = %self.name, "service failed, restarting: {cause}");
        self.root.do_send(Lifecycle::Failed {
            name: self.name.clone(),
            cause,
        });
        ctx.stop();
    }
}

impl<S: Service> Actor for ServiceActor<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(limits::MAILBOX_CAPACITY);
        if self.stopped {
            return;
        }
        let inner = &mut self.inner;
        match guard(|| inner.start(ctx)) {
            Ok(()) => self.root.do_send(Lifecycle::Started(self.name.clone())),
            Err(cause) => self.fail(cause, ctx),
        }
    }
}

impl<S: Service> Supervised for ServiceActor<S> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        let inner = &mut self.inner;
        let _ = guard(|| {
            inner.stop();
            Ok(())
        });
        let factory = &self.factory;
        match guard(|| Ok(factory())) {
            Ok(fresh) => self.inner = fresh,
            Err(cause) => {
                // The factory only moves handles around; if even that fails the node cannot
                // keep its promises, and aborting is the honest answer (guard.rs).
                tracing::error!(service = %self.name, "cannot rebuild the service: {cause}");
                std::process::abort();
            }
        }
    }
}

impl<S: Service> Handler<Deliver> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, d: Deliver, ctx: &mut Context<Self>) {
        let is_request = d.env.msg.kind() == MsgKind::Request;
        if self.stopped {
            if is_request {
                d.bus.send(d.env.reply(Msg::failure(
                    code::SHUTTING_DOWN,
                    format!("{} is stopped", self.name),
                )));
            }
            return;
        }
        if is_request {
            let e = &d.env;
            self.in_flight = Some((d.bus.clone(), e.dst.clone(), e.src.clone(), e.request_id));
        }
        let inner = &mut self.inner;
        match guard(|| inner.handle(d, ctx)) {
            Ok(()) => self.in_flight = None,
            Err(cause) => self.fail(cause, ctx),
        }
    }
}

impl<S: Service> Handler<Control> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, c: Control, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let name = self.name.clone();
        let stopping = matches!(c, Control::Stop);
        let inner = &mut self.inner;
        let result = guard(|| match c {
            Control::Crash { requested_by } => {
                panic!("debug crash of {name} requested by {requested_by}")
            }
            Control::Fail(cause) => Err(cause),
            Control::Event(ev) => inner.service_event(&ev),
            Control::Stop => {
                inner.stop();
                Ok(())
            }
        });
        if stopping {
            // Stopped for good even if releasing failed: the node is going down.
            self.stopped = true;
            if let Err(cause) = result {
                tracing::warn!(service = %self.name, "error while stopping: {cause}");
            }
            return;
        }
        if let Err(cause) = result {
            self.fail(cause, ctx);
        }
    }
}

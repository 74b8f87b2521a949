//! Who asked to be told: the one subscriber list of the crate (a manager's `subscribe`rs, the
//! BP node's block subscribers, the LNP node's peer-message and Bifrost-app services, the Storm
//! node's chat and transfer listeners, the RGB node's contract listeners).
//!
//! A subscriber is a service on a bus and the request id of its subscription, which every
//! notification carries. A list holds at most its `max`; a service that subscribes again
//! replaces its subscription. One that went away bounces (`NO_ROUTE`) to the sender, which
//! forgets it with [`Subscribers::remove`].

use super::router::Bus;
use crate::wire::api::{Envelope, Msg, ServiceId};

/// A service that asked for notifications.
#[derive(Clone)]
pub struct Subscriber {
    /// The bus it asked on (notifications go back there).
    pub bus: Bus,
    /// Who it is.
    pub id: ServiceId,
    /// The request id of its subscription, carried by every notification.
    pub request_id: u64,
}

impl Subscriber {
    /// The sender of the request `env`, which came on `bus`.
    pub fn of(bus: &Bus, env: &Envelope) -> Subscriber {
        Subscriber {
            bus: bus.clone(),
            id: env.src.clone(),
            request_id: env.request_id,
        }
    }

    /// Sends it `msg` from `src`.
    pub fn notify(&self, src: &ServiceId, msg: Msg) {
        self.bus.send(Envelope {
            src: src.clone(),
            dst: self.id.clone(),
            request_id: self.request_id,
            msg,
        });
    }
}

/// The subscribers of one kind of notification, each with what it asked for (`T`: the message
/// types of a peer-message service; nothing for most).
pub struct Subscribers<T = ()> {
    /// What they are, for the error when the list is full ("subscribers", "chat listeners").
    what: &'static str,
    /// Most subscribers at once.
    max: usize,
    list: Vec<(Subscriber, T)>,
}

impl<T> Subscribers<T> {
    /// No subscribers yet; at most `max`, called `what` in errors.
    pub const fn new(what: &'static str, max: usize) -> Subscribers<T> {
        Subscribers {
            what,
            max,
            list: Vec::new(),
        }
    }

    /// Adds `sub` (asking for `extra`), replacing an earlier subscription of the same service;
    /// refused when the list is full.
    pub fn add(&mut self, sub: Subscriber, extra: T) -> Result<(), String> {
        self.remove(&sub.id);
        if self.list.len() >= self.max {
            return Err(format!("{} {} already", self.max, self.what));
        }
        self.list.push((sub, extra));
        Ok(())
    }

    /// Forgets `id`; whether it was there.
    pub fn remove(&mut self, id: &ServiceId) -> bool {
        let before = self.list.len();
        self.list.retain(|(s, _)| &s.id != id);
        self.list.len() != before
    }

    /// Every subscriber and what it asked for.
    pub fn iter(&self) -> impl Iterator<Item = &(Subscriber, T)> {
        self.list.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sends `msg` from `src` to every subscriber whose `extra` passes `wants`; how many.
    pub fn notify_if(&self, src: &ServiceId, msg: &Msg, wants: impl Fn(&T) -> bool) -> usize {
        let mut n = 0;
        for (sub, extra) in &self.list {
            if wants(extra) {
                sub.notify(src, msg.clone());
                n += 1;
            }
        }
        n
    }

    /// Sends `msg` from `src` to every subscriber.
    pub fn notify(&self, src: &ServiceId, msg: impl Into<Msg>) {
        self.notify_if(src, &msg.into(), |_| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_service_subscribes_once_and_the_list_is_bounded() {
        let bus = Bus::new("test", Duration::from_secs(1));
        let sub = |n: u64, request_id| Subscriber {
            bus: bus.clone(),
            id: ServiceId::Client(n),
            request_id,
        };
        let mut s: Subscribers<u16> = Subscribers::new("chat listeners", 2);
        s.add(sub(1, 10), 7).unwrap();
        s.add(sub(1, 11), 8).unwrap();
        assert_eq!(s.len(), 1, "the second subscription replaced the first");
        assert_eq!(
            s.iter().next().map(|(x, t)| (x.request_id, *t)),
            Some((11, 8))
        );
        s.add(sub(2, 12), 9).unwrap();
        assert_eq!(
            s.add(sub(3, 13), 9).unwrap_err(),
            "2 chat listeners already"
        );
        assert!(s.remove(&ServiceId::Client(1)));
        assert!(!s.remove(&ServiceId::Client(1)));
        s.add(sub(3, 13), 9).unwrap();
        assert_eq!(s.len(), 2);
    }
}

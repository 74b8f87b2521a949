//! The apps registered on the STORM bus: a client registers an app id and receives
//! `app_message` (and, for the containers of its app, `container_received`) notifications
//! with the request id of its `register_app`, until it goes away. Shared by `stormd`
//! (registration, local `app_send`) and the LNP link (the app messages and containers of
//! peers).

use crate::actors::limits::MAX_APPS;
use crate::bus::Subscriber;
use crate::wire::api::storm::{AppInfo, StormMsg};
use crate::wire::api::{code, ApiError, ServiceId};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A registered app: who takes its messages, and its name.
struct App {
    name: String,
    to: Subscriber,
}

/// The registry.
#[derive(Default)]
pub struct Apps {
    map: Mutex<BTreeMap<u16, App>>,
}

impl Apps {
    /// `register_app`: `to` takes the messages of `app` from now on (registering again renews
    /// it); refused if another service holds the id or [`MAX_APPS`] are registered.
    pub fn register(&self, app: u16, name: &str, to: Subscriber) -> Result<String, ApiError> {
        let mut apps = crate::sync::lock(&self.map);
        match apps.get(&app) {
            Some(a) if a.to.id != to.id => {
                return Err(ApiError::new(
                    code::CONFLICT,
                    format!("app id {app:#06x} is taken by `{}`", a.name),
                ))
            }
            None if apps.len() >= MAX_APPS => {
                return Err(ApiError::new(
                    code::BUSY,
                    format!("{MAX_APPS} apps are registered"),
                ))
            }
            _ => {}
        }
        tracing::info!(app, %name, by = %to.id, "storm app registered");
        apps.insert(
            app,
            App {
                name: name.to_string(),
                to,
            },
        );
        Ok(format!("registered as app {app:#06x}"))
    }

    /// Sends `msg` to the service registered as `app`; false if none is.
    pub fn deliver(&self, app: u16, msg: StormMsg) -> bool {
        let apps = crate::sync::lock(&self.map);
        let Some(a) = apps.get(&app) else {
            return false;
        };
        a.to.notify(&ServiceId::Stormd, msg.into());
        true
    }

    /// Every registered app.
    pub fn list(&self) -> Vec<AppInfo> {
        crate::sync::lock(&self.map)
            .iter()
            .map(|(app, a)| AppInfo {
                app: *app,
                name: a.name.clone(),
            })
            .collect()
    }

    /// How many are registered.
    pub fn count(&self) -> usize {
        crate::sync::lock(&self.map).len()
    }

    /// `service` is gone: its apps are dropped.
    pub fn forget(&self, service: &ServiceId) {
        crate::sync::lock(&self.map).retain(|app, a| {
            let keep = &a.to.id != service;
            if !keep {
                tracing::info!(app = *app, name = %a.name, "storm app gone");
            }
            keep
        });
    }
}

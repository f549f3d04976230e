//! systemd's manager API (org.freedesktop.systemd1.Manager, see org.freedesktop.systemd1(5)) over
//! the system bus, through zbus's blocking API. Each call that queues a job waits for its
//! JobRemoved signal, whose result says whether the job did what was asked.

use std::sync::mpsc;
use std::time::Duration;

use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{self, OwnedObjectPath};
use zbus::MatchRule;

use super::properties::{Property, Value};
use crate::{Error, Result};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take, as in runc.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Bus {
    conn: Connection,
}

/// What a failed call was about, and D-Bus's error name and text.
fn failed(what: impl std::fmt::Display, e: zbus::Error) -> Error {
    Error::Systemd(format!("{what}: {e}"))
}

/// The D-Bus error name of a failed method call, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

fn variant(v: &Value) -> zvariant::Value<'static> {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::U64(n) => (*n).into(),
        Value::Str(s) => s.clone().into(),
        Value::Pids(p) => p.clone().into(),
        Value::Mask(m) => m.clone().into(),
        Value::DeviceAllow(d) => d.clone().into(),
        Value::IoLimits(l) => l.clone().into(),
    }
}

fn variants(props: &[Property]) -> Vec<(&'static str, zvariant::Value<'static>)> {
    props.iter().map(|(n, v)| (*n, variant(v))).collect()
}

impl Bus {
    pub fn connect() -> Result<Bus> {
        let conn = Connection::system()
            .map_err(|e| failed("connect to the system bus (D-Bus) to reach systemd", e))?;
        Ok(Bus { conn })
    }

    fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
    }

    /// Call `method`, which queues a job, and wait for the job's result (`done` on success).
    fn job<B>(&self, method: &str, body: &B) -> zbus::Result<String>
    where
        B: serde::Serialize + zvariant::DynamicType,
    {
        // Listen before the call, so the signal cannot come before we do.
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(DEST)?
            .path(PATH)?
            .interface(MANAGER)?
            .member("JobRemoved")?
            .build();
        let signals = MessageIterator::for_match_rule(rule, &self.conn, Some(64))?;
        // systemd sends job signals only to clients that subscribed.
        self.call("Subscribe", &())?;
        let job: OwnedObjectPath = self.call(method, body)?.body().deserialize()?;
        // The iterator blocks: it runs on a thread of its own, which ends with its result, so
        // that the wait can give up.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for msg in signals {
                let Ok(msg) = msg else { continue };
                let body = msg.body();
                let Ok((_, path, _, result)) =
                    body.deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    let _ = tx.send(result);
                    return;
                }
            }
        });
        rx.recv_timeout(JOB_TIMEOUT)
            .map_err(|_| zbus::Error::Failure(format!("no job result within {JOB_TIMEOUT:?}")))
    }

    /// StartTransientUnit; a unit of that name left over from an earlier run (failed) is reset
    /// and the start tried once more, as runc does.
    pub fn start(&self, unit: &str, props: &[Property]) -> Result<()> {
        let body = (
            unit,
            "replace",
            variants(props),
            Vec::<(&str, Vec<(&str, zvariant::Value)>)>::new(),
        );
        let what = || format!("systemd: start transient unit {unit}");
        let mut result = self.job("StartTransientUnit", &body);
        if matches!(&result, Err(e) if error_name(e) == Some("org.freedesktop.systemd1.UnitExists"))
        {
            self.reset_failed(unit);
            result = self.job("StartTransientUnit", &body);
        }
        match result {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => {
                self.reset_failed(unit);
                Err(Error::Systemd(format!("{}: the job ended {r:?}", what())))
            }
            Err(e) => {
                self.reset_failed(unit);
                Err(failed(what(), e))
            }
        }
    }

    /// SetUnitProperties at runtime (not persisted across a reboot, as for a transient unit).
    pub fn set(&self, unit: &str, props: &[Property]) -> Result<()> {
        self.call("SetUnitProperties", &(unit, true, variants(props)))
            .map(drop)
            .map_err(|e| failed(format!("systemd: set properties of unit {unit}"), e))
    }

    /// StopUnit and wait for it; a unit systemd does not know (any more) is fine. A failed one
    /// is reset so that systemd forgets it.
    pub fn stop(&self, unit: &str) -> Result<()> {
        let result = match self.job("StopUnit", &(unit, "replace")) {
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(failed(format!("systemd: stop unit {unit}"), e)),
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => Err(Error::Systemd(format!(
                "systemd: stop unit {unit}: the job ended {r:?}"
            ))),
        };
        self.reset_failed(unit);
        result
    }

    /// ResetFailedUnit, best effort: the unit is usually not failed, or gone.
    fn reset_failed(&self, unit: &str) {
        if let Err(e) = self.call("ResetFailedUnit", &(unit,)) {
            tracing::debug!("systemd: reset failed unit {unit}: {e}");
        }
    }
}

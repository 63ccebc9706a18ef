//! Leases: one run per session at a time, across processes ([`sessiondb::Store::claim`]).
//!
//! A `Lease` is the core's lease plus the path of the store that claimed it, so that a lease
//! handed to a store of another database is refused by name instead of looking released. A
//! `LeasedSession` keeps the lease, not a core handle: each write asks the store for a leased
//! handle of its own, so a fork or a closed store needs nothing more here.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use sessiondb::NewMessage;

use super::streams::stream_end;
use super::Store;
use crate::convert::{count, from_py, metadata, to_py};
use crate::errors::invalid;

/// A held lease, from `Store.claim`: pass it to `Store.with_lease` to write under it.
#[pyclass(frozen, eq, module = "sessiondb._core", name = "Lease")]
#[derive(PartialEq)]
pub(crate) struct Lease {
    lease: sessiondb::Lease,
    /// The path of the store that claimed it (`Store.path`).
    store: String,
}

#[pymethods]
impl Lease {
    #[getter]
    fn session_id(&self) -> &str {
        &self.lease.session_id
    }

    #[getter]
    fn owner(&self) -> &str {
        &self.lease.owner
    }

    /// When this claim was made: an aware `datetime` in UTC.
    #[getter]
    fn acquired_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.lease.acquired_at
    }

    /// When the lease runs out unless renewed: an aware `datetime` in UTC.
    #[getter]
    fn expires_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.lease.expires_at
    }

    /// The random token that proves this claim; a new claim gets a new one, a renewal keeps it.
    #[getter]
    fn token(&self) -> &str {
        self.lease.token()
    }

    /// The path of the store that claimed it.
    #[getter]
    fn store_path(&self) -> &str {
        &self.store
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "sessiondb.Lease(session_id={}, owner={}, expires_at='{}')",
            self.lease.session_id.as_str().into_pyobject(py)?.repr()?,
            self.lease.owner.as_str().into_pyobject(py)?.repr()?,
            self.lease.expires_at.to_rfc3339()
        ))
    }
}

/// The writes of one session under a lease, from `Store.with_lease` or `Store.lease`: each
/// checks inside its own transaction that the lease is still held, else raises `LeaseLost`
/// and writes nothing. A context manager: leaving the `with` block releases the lease.
#[pyclass(frozen, module = "sessiondb._core", name = "LeasedSession")]
pub(crate) struct LeasedSession {
    store: Py<Store>,
    /// Renewing through this handle moves its expiry; the token never changes.
    lease: Mutex<sessiondb::Lease>,
}

impl LeasedSession {
    fn lease(&self) -> sessiondb::Lease {
        self.lease
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs `op` on the store's leased handle of this session.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&sessiondb::LeasedSession) -> sessiondb::Result<T> + Send,
    ) -> PyResult<T> {
        let lease = self.lease();
        self.store.get().run(py, move |s| op(&s.with_lease(&lease)))
    }

    fn run_to_py<T: serde::Serialize + Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&sessiondb::LeasedSession) -> sessiondb::Result<T> + Send,
    ) -> PyResult<Py<PyAny>> {
        let value = self.run(py, op)?;
        to_py(py, &value)
    }
}

#[pymethods]
impl LeasedSession {
    #[getter]
    fn session_id(&self) -> String {
        self.lease().session_id
    }

    /// The lease this handle writes under (with the expiry of its last renewal here).
    #[getter(lease)]
    fn lease_now(&self) -> Lease {
        Lease {
            lease: self.lease(),
            store: self.store.get().path(),
        }
    }

    #[pyo3(signature = (message, *, expected_version=None))]
    fn add_message(
        &self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let message: NewMessage = from_py("message", message)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.add_message_at_version(message, v),
            None => s.add_message(message),
        })
    }

    #[pyo3(signature = (messages, *, expected_version=None))]
    fn set_chat_history(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let messages: Vec<NewMessage> = from_py("messages", messages)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.set_chat_history_at_version(&messages, v),
            None => s.set_chat_history(&messages),
        })
    }

    #[pyo3(signature = (model=None, metadata=None))]
    fn start_stream(
        &self,
        py: Python<'_>,
        model: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let metadata = self::metadata(metadata)?;
        self.run_to_py(py, move |s| s.start_stream(model.as_deref(), metadata))
    }

    fn append_stream(&self, py: Python<'_>, chunk: String) -> PyResult<()> {
        self.run(py, move |s| s.append_stream(&chunk))
    }

    #[pyo3(signature = (*, content=None, model=None, metadata=None, tool_calls=None, input_tokens=None, output_tokens=None, cost=None))]
    #[allow(clippy::too_many_arguments)]
    fn finish_stream(
        &self,
        py: Python<'_>,
        content: Option<String>,
        model: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        tool_calls: Option<&Bound<'_, PyAny>>,
        input_tokens: Option<i64>,
        output_tokens: Option<i64>,
        cost: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let end = stream_end(
            content,
            model,
            metadata,
            tool_calls,
            input_tokens,
            output_tokens,
            cost,
        )?;
        self.run_to_py(py, move |s| s.finish_stream(end))
    }

    fn discard_stream(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |s| s.discard_stream())
    }

    /// The working history (a read: not checked against the lease).
    #[pyo3(signature = (max_messages=None))]
    fn chat_history(&self, py: Python<'_>, max_messages: Option<i64>) -> PyResult<Py<PyAny>> {
        let max = count("max_messages", max_messages)?;
        let history = self.run(py, move |s| s.chat_history(max))?;
        to_py(py, &*history)
    }

    /// `Store.renew` of this handle's lease; the handle keeps working with the new expiry.
    fn renew(&self, py: Python<'_>, ttl: f64) -> PyResult<Lease> {
        let ttl = self::ttl(ttl)?;
        let lease = self.lease();
        let renewed = self.store.get().run(py, move |s| s.renew(&lease, ttl))?;
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = renewed.clone();
        Ok(Lease {
            lease: renewed,
            store: self.store.get().path(),
        })
    }

    /// `Store.release` of this handle's lease.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        let lease = self.lease();
        self.store.get().run(py, move |s| s.release(&lease))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Releases the lease (whatever ended the block); an exception of the block goes on.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let lease = self.lease();
        Ok(format!(
            "sessiondb.LeasedSession(session_id={}, owner={})",
            lease.session_id.as_str().into_pyobject(py)?.repr()?,
            lease.owner.as_str().into_pyobject(py)?.repr()?,
        ))
    }
}

impl Store {
    /// The core lease of `lease`, refused by name if another database's store claimed it.
    fn own_lease(&self, lease: &Lease) -> PyResult<sessiondb::Lease> {
        let here = self.path();
        if lease.store != here {
            return Err(invalid(format!(
                "the lease of session {:?} was claimed through the store of {}, not this \
                 store of {here}",
                lease.lease.session_id, lease.store
            )));
        }
        Ok(lease.lease.clone())
    }
}

#[pymethods]
impl Store {
    /// Claims the lease of `session_id` for `owner` for `ttl` seconds. Raises `LeaseHeld`
    /// while another owner holds it; an expired lease is taken over.
    fn claim(
        &self,
        py: Python<'_>,
        session_id: String,
        owner: String,
        ttl: f64,
    ) -> PyResult<Lease> {
        let ttl = self::ttl(ttl)?;
        let lease = self.run(py, move |s| s.claim(&session_id, &owner, ttl))?;
        Ok(Lease {
            lease,
            store: self.path(),
        })
    }

    /// Extends a held lease to `ttl` seconds from now; `LeaseLost` if it is no longer held.
    fn renew(&self, py: Python<'_>, lease: &Lease, ttl: f64) -> PyResult<Lease> {
        let ttl = self::ttl(ttl)?;
        let core = self.own_lease(lease)?;
        let renewed = self.run(py, move |s| s.renew(&core, ttl))?;
        Ok(Lease {
            lease: renewed,
            store: self.path(),
        })
    }

    /// Gives the lease up; returns whether it was still held.
    fn release(&self, py: Python<'_>, lease: &Lease) -> PyResult<bool> {
        let core = self.own_lease(lease)?;
        self.run(py, move |s| s.release(&core))
    }

    /// Writes to the lease's session that succeed only while `lease` is held.
    fn with_lease(slf: &Bound<'_, Self>, lease: &Lease) -> PyResult<LeasedSession> {
        let core = slf.get().own_lease(lease)?;
        Ok(LeasedSession {
            store: slf.clone().unbind(),
            lease: Mutex::new(core),
        })
    }

    /// `with_lease(claim(session_id, owner, ttl))`: for `with store.lease(...) as leased:`,
    /// which releases the lease when the block ends.
    fn lease(
        slf: &Bound<'_, Self>,
        session_id: String,
        owner: String,
        ttl: f64,
    ) -> PyResult<LeasedSession> {
        let lease = slf.get().claim(slf.py(), session_id, owner, ttl)?;
        Ok(LeasedSession {
            store: slf.clone().unbind(),
            lease: Mutex::new(lease.lease),
        })
    }

    /// Who holds the session's lease now: `{"owner", "acquired_at", "expires_at"}`, or
    /// `None` (an expired lease is held by no one).
    fn lease_holder(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.lease_holder(&session_id))
    }

    /// Every stored lease, held or expired, by session id: `[{"session_id", "owner",
    /// "acquired_at", "expires_at", "expired"}, ...]`.
    fn leases(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, |s| s.leases())
    }

    /// Removes the session's lease, held or not, and returns what it was (`None`: none).
    fn break_lease(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.break_lease(&session_id))
    }
}

/// A lease's time to live: a finite number of seconds above zero (the core sets the limit).
fn ttl(seconds: f64) -> PyResult<Duration> {
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(invalid(format!(
            "ttl must be a number of seconds above zero, got {seconds}"
        )));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| invalid(format!("ttl of {seconds} seconds is too long for a lease")))
}

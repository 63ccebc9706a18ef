//! Core errors as Python exceptions: one class of `sessiondb._errors` per variant of
//! [`sessiondb::Error`], with what the core reported as attributes.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// Errors raised by the core, as the Python exception they become.
pub(crate) fn raise(err: sessiondb::Error) -> PyErr {
    // A wait for the lock that Ctrl-C ended (the core says Interrupted): the KeyboardInterrupt,
    // or whatever the signal handler raised, is the exception to raise. Taken on any error,
    // so a handler's exception is never dropped in favour of another error of the same call.
    if let Some(signal) = crate::interrupt::take_pending() {
        return signal;
    }
    Python::attach(|py| match build_exception(py, &err) {
        Ok(exc) => exc,
        Err(failed) => failed,
    })
}

fn build_exception(py: Python<'_>, err: &sessiondb::Error) -> PyResult<PyErr> {
    use sessiondb::Error as E;
    let mut attrs: Vec<(&str, Py<PyAny>)> = Vec::new();
    let path_attrs = |attrs: &mut Vec<(&str, Py<PyAny>)>, path: &PathBuf| -> PyResult<()> {
        attrs.push((
            "path",
            path.to_string_lossy()
                .into_owned()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        ));
        Ok(())
    };
    let name = match err {
        E::NotFound { kind, id } => {
            attrs.push(("kind", kind.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("id", id.into_pyobject(py)?.into_any().unbind()));
            "NotFound"
        }
        E::AlreadyExists(id) => {
            attrs.push(("id", id.into_pyobject(py)?.into_any().unbind()));
            "AlreadyExists"
        }
        E::InvalidInput(_) => "InvalidInput",
        E::Conflict {
            session,
            expected,
            actual,
        } => {
            attrs.push(("session", session.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("expected", expected.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("actual", actual.into_pyobject(py)?.into_any().unbind()));
            "Conflict"
        }
        E::Busy { timeout } => {
            attrs.push((
                "timeout",
                timeout.as_secs_f64().into_pyobject(py)?.into_any().unbind(),
            ));
            "Busy"
        }
        E::SchemaTooNew {
            path,
            found,
            supported,
        } => {
            path_attrs(&mut attrs, path)?;
            attrs.push(("found", found.into_pyobject(py)?.into_any().unbind()));
            attrs.push((
                "supported",
                supported.into_pyobject(py)?.into_any().unbind(),
            ));
            "SchemaTooNew"
        }
        E::NotSessionDb { path, .. } => {
            path_attrs(&mut attrs, path)?;
            "NotSessionDb"
        }
        E::ReadOnly { path, .. } => {
            path_attrs(&mut attrs, path)?;
            "ReadOnly"
        }
        E::Corrupt(_) => "Corrupt",
        E::StorageFull(_) => "StorageFull",
        E::Io { path, .. } => {
            path_attrs(&mut attrs, path)?;
            "IoError"
        }
        E::FileExists { path } => {
            path_attrs(&mut attrs, path)?;
            "FileExists"
        }
        E::UnsafePermissions { path, .. } => {
            path_attrs(&mut attrs, path)?;
            "UnsafePermissions"
        }
        E::FileReplaced { path, .. } => {
            path_attrs(&mut attrs, path)?;
            "FileReplaced"
        }
        E::ForeignWal { path, wal } | E::WalDeleted { path, wal } => {
            path_attrs(&mut attrs, path)?;
            let wal = wal.display().to_string();
            attrs.push(("wal", wal.into_pyobject(py)?.into_any().unbind()));
            if matches!(err, E::ForeignWal { .. }) {
                "ForeignWal"
            } else {
                "WalDeleted"
            }
        }
        E::Interrupted => "Interrupted",
        E::Sqlite(_) => "SqliteError",
        E::Pool(_) => "PoolError",
        #[cfg(feature = "postgres")]
        E::Postgres(_) => "PostgresError",
        E::CommitOutcomeUnknown { .. } => "CommitOutcomeUnknown",
        E::KeysPartlyStored {
            session,
            stored,
            new,
        } => {
            attrs.push(("session", session.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("stored", stored.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("new", new.into_pyobject(py)?.into_any().unbind()));
            "KeysPartlyStored"
        }
        E::LeaseHeld {
            session,
            owner,
            expires_at,
        } => {
            attrs.push(("session", session.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("owner", owner.into_pyobject(py)?.into_any().unbind()));
            attrs.push((
                "expires_at",
                expires_at.into_pyobject(py)?.into_any().unbind(),
            ));
            "LeaseHeld"
        }
        E::LeaseLost {
            session,
            owner,
            holder,
            reason,
        } => {
            attrs.push(("session", session.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("owner", owner.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("holder", holder.into_pyobject(py)?.into_any().unbind()));
            attrs.push(("reason", reason.into_pyobject(py)?.into_any().unbind()));
            "LeaseLost"
        }
        _ => "Error",
    };
    let class = errors_module(py)?.getattr(name)?;
    let exc = class.call1((err.to_string(),))?;
    for (key, value) in attrs {
        exc.setattr(key, value)?;
    }
    Ok(PyErr::from_value(exc))
}

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("sessiondb._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// `InvalidInput` for a value Python handed us that the core's types cannot hold.
pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    raise(sessiondb::Error::InvalidInput(message.into()))
}

/// `sessiondb.Closed`: a call on a store after its `close()`.
pub(crate) fn closed(path: &std::path::Path) -> PyErr {
    let path = path.to_string_lossy();
    Python::attach(|py| {
        let made = errors_module(py).and_then(|m| {
            let exc = m
                .getattr("Closed")?
                .call1((format!("the store of {path} was closed; open it again"),))?;
            exc.setattr("path", path.as_ref())?;
            Ok(PyErr::from_value(exc))
        });
        made.unwrap_or_else(|failed| failed)
    })
}

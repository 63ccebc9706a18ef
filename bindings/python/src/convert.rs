//! Values across the edge: arguments into the core's types, results into Python objects.
//!
//! A Python value becomes JSON here, checked on the way, before the core sees it: what JSON
//! cannot hold is `InvalidInput` naming where it sits (`message.metadata.score`), never a
//! silent change (NaN into `null`, a set into a list) and never a crash (a dict that
//! contains itself, or one nested 200,000 deep, would otherwise recurse off the stack).

use std::fmt::Write as _;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping,
    PySequence, PySet, PyString, PyTuple,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};
use sessiondb::{ExistingFile, Metadata};

use crate::errors::invalid;

/// Deepest nesting of dicts and lists taken from Python (`sessiondb.MAX_NESTING`); the core
/// allows less still inside metadata and tool calls (`MAX_JSON_DEPTH`).
pub(crate) const MAX_NESTING: usize = 64;

/// `value` as the core's `T`, by way of checked JSON; `what` names the argument in errors.
pub(crate) fn from_py<T: DeserializeOwned>(what: &str, value: &Bound<'_, PyAny>) -> PyResult<T> {
    let json = to_json(what, value)?;
    serde_json::from_value(json).map_err(|e| invalid(format!("{what}: {e}")))
}

/// `value` as JSON, or `InvalidInput` naming what in it JSON cannot hold.
pub(crate) fn to_json(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    let mut walk = Walk::default();
    walk.value(value).map_err(|problem| {
        let mut at = what.to_string();
        for step in &walk.path {
            let _ = match step {
                Step::Key(key) => write!(at, ".{key}"),
                Step::Index(i) => write!(at, "[{i}]"),
            };
        }
        invalid(format!("{at} {problem}"))
    })
}

/// One step from a container to the value at hand; keys stay Python strings until an
/// error names them.
enum Step<'py> {
    Key(Bound<'py, PyAny>),
    Index(usize),
}

/// The dicts and lists being converted, outermost first, and the steps leading to the
/// value at hand: the depth, the cycle check and the path an error names.
#[derive(Default)]
struct Walk<'py> {
    open: Vec<*mut pyo3::ffi::PyObject>,
    path: Vec<Step<'py>>,
}

impl<'py> Walk<'py> {
    fn value(&mut self, value: &Bound<'py, PyAny>) -> Result<Value, String> {
        // The common types first; `bool` before `int`, which it subclasses.
        if let Ok(s) = value.cast::<PyString>() {
            return s
                .to_str()
                .map(|s| Value::String(s.to_owned()))
                .map_err(|_| "is a str that is not valid Unicode (a lone surrogate)".into());
        }
        if let Ok(dict) = value.cast::<PyDict>() {
            return self.container(value, |walk| walk.object(dict.iter()));
        }
        if let Ok(list) = value.cast::<PyList>() {
            return self.container(value, |walk| walk.array(list.iter()));
        }
        if value.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = value.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if value.is_instance_of::<PyInt>() {
            if let Ok(i) = value.extract::<i64>() {
                return Ok(Value::from(i));
            }
            if let Ok(u) = value.extract::<u64>() {
                return Ok(Value::from(u));
            }
            return Err(format!(
                "is {value}, an integer JSON numbers cannot hold (64 bits at most)"
            ));
        }
        if let Ok(f) = value.cast::<PyFloat>() {
            return Number::from_f64(f.value())
                .map(Value::Number)
                .ok_or_else(|| format!("is {value}, which JSON cannot hold (no NaN or infinity)"));
        }
        if let Ok(tuple) = value.cast::<PyTuple>() {
            return self.container(value, |walk| walk.array(tuple.iter()));
        }
        if value.is_instance_of::<PySet>() || value.is_instance_of::<PyFrozenSet>() {
            return Err("is a set, which JSON cannot hold: pass a list".into());
        }
        if value.is_instance_of::<PyBytes>() || value.is_instance_of::<PyByteArray>() {
            return Err("is bytes, which JSON cannot hold: pass a str".into());
        }
        if let Ok(mapping) = value.cast::<PyMapping>() {
            let items = mapping
                .items()
                .map_err(|e| format!("cannot be read: {e}"))?;
            let pairs = items
                .iter()
                .map(|pair| pair.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>())
                .collect::<PyResult<Vec<_>>>()
                .map_err(|e| format!("cannot be read: {e}"))?;
            return self.container(value, |walk| walk.object(pairs.into_iter()));
        }
        if let Ok(sequence) = value.cast::<PySequence>() {
            let items = sequence
                .to_list()
                .map_err(|e| format!("cannot be read: {e}"))?;
            return self.container(value, |walk| walk.array(items.iter()));
        }
        let kind = value
            .get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string());
        let article = match kind.chars().next() {
            Some(c) if "aeiouAEIOU".contains(c) => "an",
            _ => "a",
        };
        Err(format!("is {article} {kind}, which JSON cannot hold"))
    }

    /// Converts the container `value` with `convert`, refusing a cycle or one level too many.
    fn container(
        &mut self,
        value: &Bound<'py, PyAny>,
        convert: impl FnOnce(&mut Self) -> Result<Value, String>,
    ) -> Result<Value, String> {
        let id = value.as_ptr();
        if self.open.contains(&id) {
            return Err("contains itself (a cycle), which JSON cannot hold".into());
        }
        if self.open.len() >= MAX_NESTING {
            return Err(format!("nests deeper than {MAX_NESTING} levels"));
        }
        self.open.push(id);
        let out = convert(self);
        self.open.pop();
        out
    }

    fn object(
        &mut self,
        pairs: impl Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    ) -> Result<Value, String> {
        let mut out = Map::new();
        for (key, item) in pairs {
            let text = key
                .cast::<PyString>()
                .ok()
                .and_then(|k| k.to_str().ok().map(str::to_owned));
            let Some(text) = text else {
                return Err(format!("has the key {key}, not a str: JSON keys are text"));
            };
            self.path.push(Step::Key(key));
            let item = self.value(&item)?;
            self.path.pop();
            out.insert(text, item);
        }
        Ok(Value::Object(out))
    }

    fn array(&mut self, items: impl Iterator<Item = Bound<'py, PyAny>>) -> Result<Value, String> {
        let mut out = Vec::with_capacity(items.size_hint().0);
        for (i, item) in items.enumerate() {
            self.path.push(Step::Index(i));
            out.push(self.value(&item)?);
            self.path.pop();
        }
        Ok(Value::Array(out))
    }
}

pub(crate) fn to_py<T: Serialize + ?Sized>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    pythonize::pythonize(py, value)
        .map(Bound::unbind)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot convert a result to Python: {e}")))
}

pub(crate) fn index(name: &str, value: i64) -> PyResult<u64> {
    u64::try_from(value).map_err(|_| invalid(format!("{name} must be 0 or more, got {value}")))
}

pub(crate) fn count(name: &str, value: Option<i64>) -> PyResult<Option<usize>> {
    value
        .map(|v| {
            usize::try_from(v).map_err(|_| invalid(format!("{name} must be 0 or more, got {v}")))
        })
        .transpose()
}

pub(crate) fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid(format!(
            "{name} must be a number of seconds, 0 or more, got {value}"
        ))
    })
}

pub(crate) fn metadata(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Metadata>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| from_py("metadata", v))
        .transpose()
}

pub(crate) fn existing(force: bool) -> ExistingFile {
    if force {
        ExistingFile::Replace
    } else {
        ExistingFile::Refuse
    }
}

/// The message `item` (an OpenAI Agents SDK item) is stored as, as the dict
/// `Store.set_chat_history` takes: what `add_openai_items` writes, for a caller that writes
/// items together with other messages in one transaction.
#[pyfunction]
pub(crate) fn openai_message(item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let json = to_json("item", item)?;
    let message = sessiondb::NewMessage::from_openai_item(json).map_err(crate::errors::raise)?;
    to_py(item.py(), &message)
}

/// A copy of a JSON-shaped value: every dict and list is new, everything else (strings,
/// numbers, `None`, which are immutable) is shared. What a cache hands out instead of its own
/// objects, so a caller's changes stay the caller's; far cheaper than `copy.deepcopy`.
#[pyfunction]
pub(crate) fn copy_json(value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let py = value.py();
    // SAFETY: `copy_raw` gets a live object (borrowed from `value`) with the GIL held and
    // returns a new reference or null with a Python error set.
    unsafe {
        let copy = copy_raw(value.as_ptr(), 0);
        Bound::from_owned_ptr_or_err(py, copy).map(Bound::unbind)
    }
}

/// [`copy_json`] on raw objects: the copy a cache hands out on every read, so it skips
/// pyo3's per-item bookkeeping. `obj` is borrowed; returns a new reference, or null with a
/// Python error set.
unsafe fn copy_raw(obj: *mut pyo3::ffi::PyObject, depth: usize) -> *mut pyo3::ffi::PyObject {
    use pyo3::ffi;
    // A value that contains itself would recurse for ever.
    if depth > MAX_NESTING {
        let message = format!("copy_json: the value nests deeper than {MAX_NESTING} levels\0");
        ffi::PyErr_SetString(ffi::PyExc_ValueError, message.as_ptr().cast());
        return std::ptr::null_mut();
    }
    let container = |o: *mut ffi::PyObject| ffi::PyDict_Check(o) != 0 || ffi::PyList_Check(o) != 0;
    if ffi::PyDict_Check(obj) != 0 {
        let out = ffi::PyDict_Copy(obj);
        if out.is_null() {
            return out;
        }
        let (mut pos, mut key, mut item) = (0, std::ptr::null_mut(), std::ptr::null_mut());
        while ffi::PyDict_Next(obj, &mut pos, &mut key, &mut item) != 0 {
            if container(item) {
                let copy = copy_raw(item, depth + 1);
                if copy.is_null() || ffi::PyDict_SetItem(out, key, copy) < 0 {
                    ffi::Py_XDECREF(copy);
                    ffi::Py_DECREF(out);
                    return std::ptr::null_mut();
                }
                ffi::Py_DECREF(copy);
            }
        }
        out
    } else if ffi::PyList_Check(obj) != 0 {
        let len = ffi::PyList_Size(obj);
        let out = ffi::PyList_GetSlice(obj, 0, len);
        if out.is_null() {
            return out;
        }
        for i in 0..len {
            let item = ffi::PyList_GetItem(out, i);
            if !item.is_null() && container(item) {
                let copy = copy_raw(item, depth + 1);
                // PyList_SetItem takes `copy` and releases the shared item.
                if copy.is_null() || ffi::PyList_SetItem(out, i, copy) < 0 {
                    ffi::Py_DECREF(out);
                    return std::ptr::null_mut();
                }
            }
        }
        out
    } else {
        ffi::Py_IncRef(obj);
        obj
    }
}

/// JSON values as the Python objects `json.loads` would give, built directly: every item a
/// session reads comes through here. Object keys repeat from item to item (`role`, `type`,
/// `content`, …), so one conversion reuses each key's string object (its hash is computed
/// once) instead of making and hashing a new one per dict.
#[derive(Default)]
pub(crate) struct JsonToPy<'a, 'py> {
    keys: Vec<(&'a str, Bound<'py, PyString>)>,
}

impl<'a, 'py> JsonToPy<'a, 'py> {
    /// Keys remembered per conversion; SDK items use a few dozen names at most.
    const MAX_KEYS: usize = 64;

    pub(crate) fn value(
        &mut self,
        py: Python<'py>,
        value: &'a Value,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match value {
            Value::Null => py.None().into_bound(py),
            Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.into_pyobject(py)?.into_any(),
                (None, Some(u), _) => u.into_pyobject(py)?.into_any(),
                (None, None, f) => f.unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
            },
            Value::String(s) => PyString::new(py, s).into_any(),
            Value::Array(items) => {
                let list = PyList::empty(py);
                for item in items {
                    list.append(self.value(py, item)?)?;
                }
                list.into_any()
            }
            Value::Object(map) => {
                let dict = PyDict::new(py);
                for (key, item) in map {
                    dict.set_item(self.key(py, key), self.value(py, item)?)?;
                }
                dict.into_any()
            }
        })
    }

    fn key(&mut self, py: Python<'py>, key: &'a str) -> Bound<'py, PyString> {
        if let Some((_, known)) = self.keys.iter().find(|(k, _)| *k == key) {
            return known.clone();
        }
        let made = PyString::new(py, key);
        if self.keys.len() < Self::MAX_KEYS {
            self.keys.push((key, made.clone()));
        }
        made
    }
}

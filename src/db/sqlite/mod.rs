//! SQLite: opening a file the first time ([`bootstrap`], [`permissions`], [`migrations`]),
//! opening each pooled connection ([`opener`], [`connection`]), which database file a `-wal`
//! belongs to ([`wal_owner`], with [`files`]), its side of the neutral vocabulary of `Tx` and the store
//! ([`dialect`]), the commit counter a watcher polls ([`data_version`]), and how a [`Value`]
//! is bound and a [`ReadRow`] read.

pub(crate) mod bootstrap;
pub(crate) mod connection;
pub(crate) mod data_version;
pub(crate) mod dialect;
pub(crate) mod files;
pub(crate) mod migrations;
pub(crate) mod opener;
pub(crate) mod permissions;
pub(crate) mod wal_owner;

use rusqlite::types::{Null, ToSql, ToSqlOutput};

use crate::db::value::{ReadRow, Value};
use crate::error::Result;
use crate::model::Role;

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Value::Null(_) => Ok(ToSqlOutput::from(Null)),
            Value::Int64(v) => v.to_sql(),
            Value::Int32(v) => v.to_sql(),
            Value::Float64(v) => v.to_sql(),
            Value::Bool(v) => v.to_sql(),
            Value::Text(v) => v.to_sql(),
            Value::Blob(v) => v.to_sql(),
        }
    }
}

/// Every column is read by rusqlite's own conversion of its type.
impl ReadRow for rusqlite::Row<'_> {
    fn int64(&self, index: usize) -> Result<i64> {
        Ok(self.get(index)?)
    }
    fn int64_opt(&self, index: usize) -> Result<Option<i64>> {
        Ok(self.get(index)?)
    }
    fn float64(&self, index: usize) -> Result<f64> {
        Ok(self.get(index)?)
    }
    fn float64_opt(&self, index: usize) -> Result<Option<f64>> {
        Ok(self.get(index)?)
    }
    fn boolean(&self, index: usize) -> Result<bool> {
        Ok(self.get(index)?)
    }
    fn text(&self, index: usize) -> Result<String> {
        Ok(self.get(index)?)
    }
    fn text_opt(&self, index: usize) -> Result<Option<String>> {
        Ok(self.get(index)?)
    }
    fn blob(&self, index: usize) -> Result<Vec<u8>> {
        Ok(self.get(index)?)
    }
    fn blob_opt(&self, index: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.get(index)?)
    }
    fn role(&self, index: usize) -> Result<Role> {
        Ok(self.get(index)?)
    }
}

//! The database layer, ground first: [`value`] (values into and out of a statement), the
//! drivers ([`sqlite`], and `postgres` with its feature) over the shared connection
//! [`pool`], then [`sql`] (`Tx`, the one dispatch the logic calls). Nothing here runs
//! after [`crate::Store::open`] returns but the pool and `Tx`.

pub(crate) mod pool;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sql;
pub(crate) mod sqlite;
pub(crate) mod value;

/// `PRAGMA application_id` of a sessiondb file ("SeDB"), so `file(1)` and tools recognise it.
pub const APPLICATION_ID: i32 = 0x5365_4442;

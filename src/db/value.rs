//! Values into and out of a statement, in words both drivers understand: a parameter is a
//! [`Value`] ([`Param`], [`args!`]), a column is read through [`ReadRow`] ([`Column`]). Each
//! driver turns a [`Value`] into its own type and implements [`ReadRow`] for its own row, so
//! nothing here names a driver, and a driver needs nothing from the database layer but this.

use crate::error::Result;
use crate::model::Role;

/// The type of a parameter, known even when its value is NULL: PostgreSQL is told it when a
/// statement is sent unprepared, and checks it against the placeholder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int64,
    Int32,
    Float64,
    Bool,
    Text,
    Blob,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// (SQLite binds any NULL alike; PostgreSQL needs its kind.)
    Null(#[cfg_attr(not(feature = "postgres"), allow(dead_code))] Kind),
    Int64(i64),
    Int32(i32),
    Float64(f64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value bound to a placeholder: the integer, float, text and optional types both backends
/// take.
pub(crate) trait Param {
    fn value(&self) -> Value<'_>;
}

/// The [`Kind`] of each Rust type the modules bind, for its NULL.
pub(crate) trait Typed {
    const KIND: Kind;
}

macro_rules! param {
    ($($ty:ty => $kind:ident, $v:ident => $value:expr);+ $(;)?) => {
        $(impl Param for $ty {
            fn value(&self) -> Value<'_> {
                let $v = self;
                $value
            }
        }
        impl Typed for $ty {
            const KIND: Kind = Kind::$kind;
        })+
    };
}

param!(
    i64 => Int64, v => Value::Int64(*v);
    i32 => Int32, v => Value::Int32(*v);
    f64 => Float64, v => Value::Float64(*v);
    bool => Bool, v => Value::Bool(*v);
    str => Text, v => Value::Text(v);
    String => Text, v => Value::Text(v);
    std::borrow::Cow<'_, str> => Text, v => Value::Text(v);
    [u8] => Blob, v => Value::Blob(v);
    Vec<u8> => Blob, v => Value::Blob(v);
);

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Typed + ?Sized> Typed for &T {
    const KIND: Kind = T::KIND;
}

impl<T: Param + Typed> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null(T::KIND),
        }
    }
}

impl<T: Typed> Typed for Option<T> {
    const KIND: Kind = T::KIND;
}

/// `args![a, b]`: the parameters of a statement, in placeholder order.
macro_rules! args {
    () => { &[] as &[&dyn $crate::db::value::Param] };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::db::value::Param),+] as &[&dyn $crate::db::value::Param]
    };
}
pub(crate) use args;

/// A result row as its driver reads it: one method per type the modules read, each with the
/// driver's own conversions and errors.
pub(crate) trait ReadRow {
    fn int64(&self, index: usize) -> Result<i64>;
    fn int64_opt(&self, index: usize) -> Result<Option<i64>>;
    fn float64(&self, index: usize) -> Result<f64>;
    fn float64_opt(&self, index: usize) -> Result<Option<f64>>;
    fn boolean(&self, index: usize) -> Result<bool>;
    fn text(&self, index: usize) -> Result<String>;
    fn text_opt(&self, index: usize) -> Result<Option<String>>;
    fn blob(&self, index: usize) -> Result<Vec<u8>>;
    fn blob_opt(&self, index: usize) -> Result<Option<Vec<u8>>>;
    fn role(&self, index: usize) -> Result<Role>;
}

/// One result row.
#[derive(Clone, Copy)]
pub(crate) struct Row<'a>(&'a dyn ReadRow);

impl<'a> Row<'a> {
    pub(crate) fn new(row: &'a dyn ReadRow) -> Row<'a> {
        Row(row)
    }

    /// Column `index` (0-based).
    pub(crate) fn get<T: Column>(&self, index: usize) -> Result<T> {
        T::read(self.0, index)
    }
}

/// A value read from a column.
pub(crate) trait Column: Sized {
    fn read(row: &dyn ReadRow, index: usize) -> Result<Self>;
}

macro_rules! column {
    ($($ty:ty => $read:ident),+ $(,)?) => {
        $(impl Column for $ty {
            fn read(row: &dyn ReadRow, index: usize) -> Result<Self> {
                row.$read(index)
            }
        })+
    };
}

column!(
    i64 => int64,
    Option<i64> => int64_opt,
    f64 => float64,
    Option<f64> => float64_opt,
    bool => boolean,
    String => text,
    Option<String> => text_opt,
    Vec<u8> => blob,
    Option<Vec<u8>> => blob_opt,
    Role => role,
);

//! Leases: one run per session at a time, across processes.
//!
//! A lease is a row of `leases` (schema `0007_leases.sql`): the session id, the owner's name,
//! a random token and a wall-clock expiry, as ISO-8601 UTC text. Claiming, renewing and
//! releasing are each one write transaction that reads the row inside it, so two processes
//! claiming at once are ordered and exactly one wins: by SQLite's write lock, or on
//! PostgreSQL by a transaction lock on the session's lease (see `read_row`); the upsert
//! also takes over only a lease the claimant may take. Nothing
//! runs in the background: a holder that stops renewing (it crashed, it hung) loses the lease
//! when the expiry passes, and the next claim takes it over with a new token.
//!
//! Writes through [`Store::with_lease`] check, inside their own transaction, that the token
//! still holds the session's lease and has not expired; otherwise they fail with
//! [`Error::LeaseLost`] and write nothing. A lease binds only writers that pass it: plain
//! [`Store::add_message`] and friends ignore leases.
//!
//! Expiry is judged on each process's wall clock; the processes share one machine and so one
//! clock, but a clock stepped backwards lengthens the leases in force.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::history::{History, HistoryChange};
use crate::model::{
    check_field, parse_time, time_text, validate_session_id, Message, Metadata, NewMessage,
};
use crate::model::{PartialMessage, StreamEnd};
use crate::store::{Store, WriteGuard};

/// A held lease, from [`Store::claim`]. Pass it to [`Store::with_lease`] to write under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub session_id: String,
    pub owner: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    token: String,
}

impl Lease {
    /// The random token that proves this claim; a new claim gets a new one.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Who holds a session's lease, from [`Store::lease_holder`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseHolder {
    pub owner: String,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub acquired_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub expires_at: DateTime<Utc>,
}

/// A session's lease as stored, from [`Store::leases`] and [`Store::break_lease`]: held
/// until `expires_at`, or `expired` and free for the next claim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseRecord {
    pub session_id: String,
    #[serde(flatten)]
    pub holder: LeaseHolder,
    pub expired: bool,
}

/// What a leased store checks inside each write transaction (its [`WriteGuard`]).
#[derive(Debug)]
struct LeaseCheck {
    session_id: String,
    owner: String,
    token: String,
}

/// The lease row of a session.
struct Row {
    owner: String,
    token: String,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Store {
    /// Claims the lease of `session_id` for `owner` for `ttl`. Fails with
    /// [`Error::LeaseHeld`] (naming the holder and its expiry) while another owner holds an
    /// unexpired lease; an expired one is taken over. A claim by the current holder's owner
    /// takes its own lease over with a new token, so the old token stops working. The session
    /// need not exist yet.
    pub fn claim(&self, session_id: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        validate_session_id(session_id)?;
        check_owner(owner)?;
        ttl_delta(ttl)?;
        self.write(|tx| {
            // Whole microseconds: what the text column keeps, so the Lease equals its row.
            let now = Utc::now().trunc_subsecs(6);
            if let Some(row) = read_row(tx, session_id)? {
                if row.owner != owner && row.expires_at > now {
                    return Err(Error::LeaseHeld {
                        session: session_id.to_string(),
                        owner: row.owner,
                        expires_at: row.expires_at,
                    });
                }
            }
            let lease = Lease {
                session_id: session_id.to_string(),
                owner: owner.to_string(),
                acquired_at: now,
                expires_at: expiry(now, ttl)?,
                token: uuid::Uuid::new_v4().simple().to_string(),
            };
            // The condition repeats the check above against the row as the upsert finds it,
            // so a claim never overwrites a lease it may not take, whatever ran between the
            // read and the write. Times are compared as text: both are written by `text`,
            // which orders as the times do.
            let claimed = tx.execute(
                "INSERT INTO leases (session_id, owner, token, acquired_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session_id) DO UPDATE SET owner = ?2, token = ?3,
                     acquired_at = ?4, expires_at = ?5
                 WHERE leases.owner = ?2 OR leases.expires_at <= ?4",
                args![
                    session_id,
                    owner,
                    lease.token,
                    text(lease.acquired_at),
                    text(lease.expires_at)
                ],
            )?;
            if claimed == 0 {
                // The upsert locked the row it met, so it is there to read.
                let row = read_row(tx, session_id)?.ok_or_else(|| {
                    Error::Corrupt(format!("lease of session {session_id:?} vanished"))
                })?;
                return Err(Error::LeaseHeld {
                    session: session_id.to_string(),
                    owner: row.owner,
                    expires_at: row.expires_at,
                });
            }
            Ok(lease)
        })
    }

    /// Extends a lease that is still held to `ttl` from now. A lease that expired, was
    /// released or taken over is [`Error::LeaseLost`]: claim again instead.
    pub fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        ttl_delta(ttl)?;
        let check = LeaseCheck::of(lease);
        self.write(|tx| {
            check_held(tx, &check)?;
            let expires_at = expiry(Utc::now().trunc_subsecs(6), ttl)?;
            tx.execute(
                "UPDATE leases SET expires_at = ?2 WHERE session_id = ?1",
                args![lease.session_id, text(expires_at)],
            )?;
            Ok(Lease {
                expires_at,
                ..lease.clone()
            })
        })
    }

    /// Gives the lease up, so another owner can claim it at once. Returns whether it was
    /// still held (`false`: it had expired or been taken over, and nothing changed for the
    /// new holder).
    pub fn release(&self, lease: &Lease) -> Result<bool> {
        self.write(|tx| {
            let held = read_row(tx, &lease.session_id)?
                .is_some_and(|row| row.token == lease.token && row.expires_at > Utc::now());
            tx.execute(
                "DELETE FROM leases WHERE session_id = ?1 AND token = ?2",
                args![lease.session_id, lease.token],
            )?;
            Ok(held)
        })
    }

    /// Who holds the session's lease now, if anyone (an expired lease is held by no one).
    pub fn lease_holder(&self, session_id: &str) -> Result<Option<LeaseHolder>> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let now = Utc::now();
            Ok(read_row(tx, session_id)?
                .filter(|row| row.expires_at > now)
                .map(|row| LeaseHolder {
                    owner: row.owner,
                    acquired_at: row.acquired_at,
                    expires_at: row.expires_at,
                }))
        })
    }

    /// Every stored lease, held or expired, by session id: what an operator looks at when a
    /// worker seems stuck.
    pub fn leases(&self) -> Result<Vec<LeaseRecord>> {
        self.read(|tx| {
            let rows: Vec<(String, String, String, String)> = tx.query_map(
                "SELECT session_id, owner, acquired_at, expires_at FROM leases
                 ORDER BY session_id",
                args![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let now = Utc::now();
            rows.into_iter()
                .map(|(session_id, owner, acquired_at, expires_at)| {
                    let expires_at = parse_time(&expires_at)?;
                    Ok(LeaseRecord {
                        session_id,
                        holder: LeaseHolder {
                            owner,
                            acquired_at: parse_time(&acquired_at)?,
                            expires_at,
                        },
                        expired: expires_at <= now,
                    })
                })
                .collect()
        })
    }

    /// Removes the session's lease, held or not, and returns what it was (`None`: there was
    /// none). For an operator whose worker is stuck: the holder's next write under the lease
    /// fails with [`Error::LeaseLost`] ("it was released"), and anyone may claim the session.
    pub fn break_lease(&self, session_id: &str) -> Result<Option<LeaseRecord>> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            let Some(row) = read_row(tx, session_id)? else {
                return Ok(None);
            };
            tx.execute(
                "DELETE FROM leases WHERE session_id = ?1",
                args![session_id],
            )?;
            Ok(Some(LeaseRecord {
                session_id: session_id.to_string(),
                expired: row.expires_at <= Utc::now(),
                holder: LeaseHolder {
                    owner: row.owner,
                    acquired_at: row.acquired_at,
                    expires_at: row.expires_at,
                },
            }))
        })
    }

    /// Writes to the lease's session that succeed only while `lease` is held: each checks it
    /// inside its own transaction. Renewing does not change the token, so the handle keeps
    /// working across [`Store::renew`].
    pub fn with_lease(&self, lease: &Lease) -> LeasedSession {
        LeasedSession {
            store: self.guarded_by(Arc::new(LeaseCheck::of(lease))),
            session_id: lease.session_id.clone(),
        }
    }
}

/// The writes of one session under a lease, from [`Store::with_lease`]. Every write first
/// checks, in its own transaction, that the lease is still held and unexpired; otherwise
/// it is [`Error::LeaseLost`] and nothing is written.
#[derive(Debug, Clone)]
pub struct LeasedSession {
    store: Store,
    session_id: String,
}

impl LeasedSession {
    /// The session this handle writes.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// A store whose every write (of any session) checks this lease: for the operations this
    /// handle does not name.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// [`Store::add_message`] under the lease.
    pub fn add_message(&self, message: NewMessage) -> Result<Message> {
        self.store.add_message(&self.session_id, message)
    }

    /// [`Store::add_message_at_version`] under the lease.
    pub fn add_message_at_version(&self, message: NewMessage, version: i64) -> Result<Message> {
        self.store
            .add_message_at_version(&self.session_id, message, version)
    }

    /// [`Store::set_chat_history`] under the lease.
    pub fn set_chat_history(&self, messages: &[NewMessage]) -> Result<HistoryChange> {
        self.store.set_chat_history(&self.session_id, messages)
    }

    /// [`Store::set_chat_history_at_version`] under the lease.
    pub fn set_chat_history_at_version(
        &self,
        messages: &[NewMessage],
        version: i64,
    ) -> Result<HistoryChange> {
        self.store
            .set_chat_history_at_version(&self.session_id, messages, version)
    }

    /// [`Store::start_stream`] under the lease.
    pub fn start_stream(
        &self,
        model: Option<&str>,
        metadata: Option<Metadata>,
    ) -> Result<PartialMessage> {
        self.store.start_stream(&self.session_id, model, metadata)
    }

    /// [`Store::append_stream`] under the lease.
    pub fn append_stream(&self, chunk: &str) -> Result<()> {
        self.store.append_stream(&self.session_id, chunk)
    }

    /// [`Store::finish_stream`] under the lease.
    pub fn finish_stream(&self, end: StreamEnd) -> Result<Message> {
        self.store.finish_stream(&self.session_id, end)
    }

    /// [`Store::discard_stream`] under the lease.
    pub fn discard_stream(&self) -> Result<()> {
        self.store.discard_stream(&self.session_id)
    }

    /// [`Store::chat_history`] (a read: not checked against the lease).
    pub fn chat_history(&self, max_messages: Option<usize>) -> Result<History> {
        self.store.chat_history(&self.session_id, max_messages)
    }
}

impl LeaseCheck {
    fn of(lease: &Lease) -> Self {
        LeaseCheck {
            session_id: lease.session_id.clone(),
            owner: lease.owner.clone(),
            token: lease.token.clone(),
        }
    }
}

/// A leased store's writes fail with [`Error::LeaseLost`] once the lease is no longer held.
impl WriteGuard for LeaseCheck {
    fn check(&self, tx: &Tx<'_>) -> Result<()> {
        check_held(tx, self)
    }
}

/// Fails with [`Error::LeaseLost`] unless `check`'s token holds its session's lease now.
/// Runs inside the caller's write transaction, so the answer holds until it commits.
fn check_held(tx: &Tx<'_>, check: &LeaseCheck) -> Result<()> {
    let lost = |holder: Option<String>, reason: String| Error::LeaseLost {
        session: check.session_id.clone(),
        owner: check.owner.clone(),
        holder,
        reason,
    };
    match read_row(tx, &check.session_id)? {
        None => Err(lost(None, "it was released".into())),
        Some(row) if row.token != check.token => {
            let reason = if row.expires_at > Utc::now() {
                format!("{:?} holds it until {}", row.owner, text(row.expires_at))
            } else {
                "another claim replaced it".to_string()
            };
            Err(lost(
                Some(row.owner).filter(|_| row.expires_at > Utc::now()),
                reason,
            ))
        }
        Some(row) if row.expires_at <= Utc::now() => Err(lost(
            None,
            format!("it expired at {}", text(row.expires_at)),
        )),
        Some(_) => Ok(()),
    }
}

/// In a write it first locks the session's lease, which may have no row yet: two hosts
/// claiming at once then take turns, and the second sees the first one's lease.
fn read_row(tx: &Tx<'_>, session_id: &str) -> Result<Option<Row>> {
    tx.lock_key("lease", session_id)?;
    let row: Option<(String, String, String, String)> = tx.query_opt(
        "SELECT owner, token, acquired_at, expires_at FROM leases WHERE session_id = ?1",
        args![session_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let Some((owner, token, acquired_at, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(Row {
        owner,
        token,
        acquired_at: parse_time(&acquired_at)?,
        expires_at: parse_time(&expires_at)?,
    }))
}

fn check_owner(owner: &str) -> Result<()> {
    if owner.is_empty() {
        return Err(Error::invalid("lease owner is empty"));
    }
    check_field("lease owner", Some(owner))
}

/// Longer leases would only hide a holder that died; and the expiry must stay a 4-digit year.
const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

fn ttl_delta(ttl: Duration) -> Result<chrono::TimeDelta> {
    match chrono::TimeDelta::from_std(ttl) {
        Ok(delta) if !ttl.is_zero() && ttl <= MAX_TTL => Ok(delta),
        _ => Err(Error::invalid(format!(
            "lease ttl {ttl:?} must be above zero and at most {} days",
            MAX_TTL.as_secs() / 86400
        ))),
    }
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>> {
    now.checked_add_signed(ttl_delta(ttl)?)
        .ok_or_else(|| Error::invalid(format!("lease ttl {ttl:?} is out of range")))
}

fn text(t: DateTime<Utc>) -> String {
    time_text(&t)
}

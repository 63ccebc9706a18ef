//! What a command that changes something did, in a line or a few.

use std::fmt::Display;
use std::path::Path;

use sessiondb::{
    AddedMessages, Branch, CheckReport, ExpireReport, HistoryChange, ImportReport, LeaseHolder,
    LeaseRecord, MaintenanceReport, Message, PruneReport, PurgeReport, RestoreReport, Session,
    SnapshotId,
};

use super::{cell, count, history, table, time, Printed};
use crate::output::{warn, Output};

/// A bare id, for scripts: a new fork's or snapshot's.
pub fn id(out: &mut Output, id: impl Display) -> Printed {
    writeln!(out, "{id}")
}

/// `already_stored`: a retry of an add with a key; nothing was written.
pub fn added(out: &mut Output, session: &str, m: &Message, already_stored: bool) -> Printed {
    if already_stored {
        writeln!(
            out,
            "{session}: message {} ({}) was already stored under this key; nothing written",
            m.index,
            m.role()
        )
    } else {
        writeln!(out, "{session}: message {} ({})", m.index, m.role())
    }
}

pub fn appended(out: &mut Output, session: &str, added: &AddedMessages) -> Printed {
    let (first, last) = match (added.messages.first(), added.messages.last()) {
        (Some(f), Some(l)) => (f.index, l.index),
        _ => (0, 0),
    };
    writeln!(
        out,
        "{session}: messages {first}..={last} {}",
        if added.already_stored {
            "were already stored; nothing written"
        } else {
            "stored"
        }
    )
}

pub fn popped(out: &mut Output, session: &str, popped: Option<&Message>) -> Printed {
    match popped {
        Some(m) => {
            writeln!(out, "{session}: removed message {} ({})", m.index, m.role())?;
            history(out, std::slice::from_ref(m))
        }
        None => writeln!(out, "{session}: empty; nothing removed"),
    }
}

pub fn compacted(out: &mut Output, session: &str, through: u64) -> Printed {
    writeln!(
        out,
        "{session}: messages 0..={through} compacted; the working history starts with the \
         summary"
    )
}

/// The note on stderr when a limited history starts after the tool results it left out.
pub fn trimmed_tool_results(trimmed: usize, limit: Option<usize>, json: bool) {
    if json {
        // On stderr, so `history --json` stays the array `set-history` reads; a script reads
        // this line as JSON too (docs/design.md says why).
        warn(format_args!(
            "{}\n",
            serde_json::to_string(&super::Trimmed {
                trimmed_tool_results: trimmed
            })
            .unwrap_or_default()
        ));
    } else {
        warn(format_args!(
            "sessiondb: left out {trimmed} tool result(s) at the start: the call they answer is before the last {} messages\n",
            limit.unwrap_or(0)
        ));
    }
}

pub fn history_set(out: &mut Output, session: &str, change: &HistoryChange) -> Printed {
    writeln!(
        out,
        "{session}: {} kept, {} written{}",
        count(change.kept, "message"),
        change.written,
        if change.superseded {
            "; the previous history is kept as a branch"
        } else {
            ""
        }
    )
}

pub fn cleared(out: &mut Output, session: &str, s: &Session, changed: bool) -> Printed {
    if changed {
        writeln!(
            out,
            "{session}: cleared; the previous history is kept as branch {}",
            superseded_head(s)
        )
    } else {
        writeln!(out, "{session}: already empty; nothing written")
    }
}

pub fn reverted(out: &mut Output, session: &str, to: u64, s: &Session, changed: bool) -> Printed {
    if changed {
        writeln!(
            out,
            "{session}: reverted to message {to}; {}; the previous history is kept as \
             branch {}",
            count(s.message_count, "message"),
            superseded_head(s)
        )
    } else {
        writeln!(
            out,
            "{session}: message {to} is already the last; nothing written"
        )
    }
}

/// The name the head that `s`'s last change replaced goes by: `<name>@<version>`.
fn superseded_head(s: &Session) -> String {
    let base = s.head_branch.split('@').next().unwrap_or(&s.head_branch);
    format!("{base}@{}", s.version)
}

/// The hint on stderr when `sessions` printed one page of several.
pub fn more_sessions(more: u64, next: impl Display) {
    warn(format_args!(
        "{more} more: sessiondb sessions --after '{next}' (with the same filters)\n"
    ));
}

pub fn deleted(out: &mut Output, session: &str) -> Printed {
    writeln!(out, "{session}: deleted")
}

pub fn branch_created(out: &mut Output, session: &str, b: &Branch) -> Printed {
    writeln!(
        out,
        "{session}: branch {} created with {}",
        b.name,
        count(b.length, "message")
    )
}

pub fn switched(out: &mut Output, session: &str, name: &str, s: &Session) -> Printed {
    writeln!(
        out,
        "{session}: on branch {name}; {}",
        count(s.message_count, "message")
    )
}

pub fn branch_renamed(out: &mut Output, session: &str, name: &str, new_name: &str) -> Printed {
    writeln!(out, "{session}: branch {name} renamed to {new_name}")
}

pub fn branch_deleted(out: &mut Output, session: &str, name: &str, b: &Branch) -> Printed {
    writeln!(
        out,
        "{session}: branch {name} deleted; readable as {} until prune \
         (`branch switch {session} {}` brings it back)",
        b.name, b.name
    )
}

pub fn snapshot_restored(out: &mut Output, session: &str, id: SnapshotId, s: &Session) -> Printed {
    writeln!(
        out,
        "{session}: restored snapshot {id}; {}; the previous history is kept as branch {}",
        count(s.message_count, "message"),
        superseded_head(s)
    )
}

pub fn snapshot_deleted(out: &mut Output, session: &str, id: SnapshotId) -> Printed {
    writeln!(out, "{session}: snapshot {id} deleted")
}

pub fn expired(out: &mut Output, report: &ExpireReport, dry_run: bool) -> Printed {
    for id in &report.sessions {
        writeln!(out, "{id}")?;
    }
    writeln!(
        out,
        "{} {}, {}",
        if dry_run { "would expire" } else { "expired" },
        count(report.sessions.len(), "session"),
        count(report.messages, "message")
    )
}

pub fn purged(out: &mut Output, report: &PurgeReport) -> Printed {
    for id in &report.purged {
        writeln!(out, "purged {id}")?;
    }
    for id in &report.forks_kept {
        writeln!(
            out,
            "kept fork {id} (its inherited messages were copied into it)"
        )?;
    }
    writeln!(
        out,
        "erased {}, {}, {}{}",
        count(report.branches, "branch"),
        count(report.messages, "message"),
        count(report.snapshots, "snapshot"),
        if report.wal_kept {
            "; a reader kept the WAL from being truncated: run `maintain` later"
        } else {
            ""
        }
    )
}

pub fn pruned(out: &mut Output, report: &PruneReport, dry_run: bool) -> Printed {
    writeln!(
        out,
        "{} {}, {}, {}",
        if dry_run { "would remove" } else { "removed" },
        count(report.branches, "branch"),
        count(report.messages, "message"),
        count(report.bytes, "byte")
    )
}

pub fn checked(out: &mut Output, report: &CheckReport) -> Printed {
    writeln!(
        out,
        "{}, {}, {}, {}",
        count(report.sessions, "session"),
        count(report.branches, "branch"),
        count(report.messages, "message"),
        count(report.snapshots, "snapshot")
    )?;
    for problem in &report.problems {
        writeln!(out, "problem: {problem}")?;
    }
    writeln!(out, "{}", if report.is_ok() { "ok" } else { "FAILED" })
}

pub fn maintained(out: &mut Output, report: &MaintenanceReport) -> Printed {
    writeln!(
        out,
        "{} -> {} bytes{}",
        report.bytes_before,
        report.bytes_after,
        if report.wal_busy {
            " (a reader kept part of the WAL; run again later)"
        } else {
            ""
        }
    )
}

pub fn backed_up(out: &mut Output, path: &Path, bytes: u64) -> Printed {
    writeln!(out, "{}: {bytes} bytes", path.display())
}

/// `kept`: where the replaced contents were backed up.
pub fn restored(
    out: &mut Output,
    report: &RestoreReport,
    from: &Path,
    kept: Option<&Path>,
) -> Printed {
    writeln!(
        out,
        "restored {}, {}, {}, {} from {}",
        count(report.sessions, "session"),
        count(report.branches, "branch"),
        count(report.messages, "message"),
        count(report.snapshots, "snapshot"),
        from.display()
    )?;
    match kept {
        Some(path) => writeln!(
            out,
            "the replaced contents are kept in {} (restore from it to undo)",
            path.display()
        ),
        None => Ok(()),
    }
}

/// `restore --dry-run`.
pub fn restore_planned(out: &mut Output, what: &str) -> Printed {
    writeln!(out, "restore would {what}; nothing was changed")
}

/// Skipped sources are warnings on stderr; the command then fails.
pub fn imported(out: &mut Output, report: &ImportReport, dry_run: bool) -> Printed {
    writeln!(
        out,
        "{}{} imported, {} updated, {} unchanged, {} skipped",
        if dry_run {
            "dry run, nothing written: "
        } else {
            ""
        },
        report.imported,
        report.updated,
        report.unchanged,
        report.skipped.len()
    )?;
    for id in &report.updated_ids {
        writeln!(out, "updated {id}")?;
    }
    for skip in &report.skipped {
        warn(format_args!("skipped {}: {}\n", skip.source, skip.reason));
    }
    Ok(())
}

/// `lease list`: one line per lease, expired ones marked.
pub fn leases(out: &mut Output, leases: &[LeaseRecord]) -> Printed {
    if leases.is_empty() {
        return writeln!(out, "no leases");
    }
    let rows: Vec<[String; 4]> = leases
        .iter()
        .map(|l| {
            [
                cell(&l.session_id),
                cell(&l.holder.owner),
                time(&l.holder.expires_at),
                if l.expired { "expired" } else { "held" }.to_string(),
            ]
        })
        .collect();
    table(out, ["SESSION", "OWNER", "EXPIRES (UTC)", "STATE"], &rows)
}

pub fn lease_holder(out: &mut Output, session: &str, holder: Option<&LeaseHolder>) -> Printed {
    match holder {
        Some(h) => writeln!(
            out,
            "{}: held by {} since {} until {} (UTC)",
            cell(session),
            cell(&h.owner),
            time(&h.acquired_at),
            time(&h.expires_at)
        ),
        None => writeln!(out, "{}: no one holds its lease", cell(session)),
    }
}

pub fn lease_broken(out: &mut Output, session: &str, broken: Option<&LeaseRecord>) -> Printed {
    match broken {
        Some(l) if l.expired => writeln!(
            out,
            "{}: removed the expired lease of {}",
            cell(session),
            cell(&l.holder.owner)
        ),
        Some(l) => writeln!(
            out,
            "{}: broke the lease {} held until {} (UTC); its next write under it fails",
            cell(session),
            cell(&l.holder.owner),
            time(&l.holder.expires_at)
        ),
        None => writeln!(out, "{}: had no lease; nothing changed", cell(session)),
    }
}

/// On stderr, when Ctrl-C stopped an import: how far it got, and that a rerun resumes.
pub fn import_interrupted(done: usize, total: usize) {
    let of_total = if total > 0 {
        format!(" of {total}")
    } else {
        String::new()
    };
    warn(format_args!(
        "\nsessiondb: import interrupted after {done}{of_total} messages; what was imported \
         stays. Run the same command again to resume: sessions already imported read as \
         unchanged and are not written twice\n"
    ));
}

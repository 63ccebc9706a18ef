//! Commands that move data in or out of the database: `export`, `backup`, `restore` and
//! `import`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sessiondb::{Error, ExistingFile, ImportOptions, Result, Store};

use crate::args::{BackupArgs, ExportArgs, ImportArgs, ImportFormat, RestoreArgs};
use crate::confirm::confirm;
use crate::output::{Failure, Output};
use crate::print::count;
use crate::{interrupt, print, progress};

pub fn export(store: &Store, args: ExportArgs, out: &mut Output) -> Result<(), Failure> {
    let mut bar = progress::bar("exporting");
    match args.out {
        Some(path) => {
            store.export_to(
                &path,
                &args.sessions,
                args.all_branches,
                existing(args.force),
                &mut bar,
            )?;
            Ok(())
        }
        None => {
            let file = store.export(&args.sessions, args.all_branches, &mut bar)?;
            drop(bar);
            print::json(out, &file)
        }
    }
}

pub fn backup(store: &Store, args: BackupArgs, out: &mut Output) -> Result<(), Failure> {
    let spinner = progress::spinner("backing up");
    let bytes = store.backup(&args.out, existing(args.force))?;
    drop(spinner);
    if args.json {
        let path = args.out.display().to_string();
        print::json_sorted(out, &print::BackedUp { path, bytes })
    } else {
        print::backed_up(out, &args.out, bytes)
    }
}

/// Asks first (see [`confirm`]) with what is replaced by what, and keeps a backup of the
/// replaced contents unless `--no-backup`.
pub fn restore(store: &Store, args: RestoreArgs, out: &mut Output) -> Result<(), Failure> {
    if args.dry_run || !args.yes {
        let now = store.stats(Duration::ZERO)?;
        let backup = Store::builder(&args.from)
            .read_only(true)
            .create(false)
            .open()?
            .stats(Duration::ZERO)?;
        let question = format!(
            "replace {} ({}) with the {} ({}) of {}",
            count(now.sessions, "session"),
            count(now.messages, "message"),
            count(backup.sessions, "session"),
            count(backup.messages, "message"),
            args.from.display()
        );
        if args.dry_run {
            return print::restore_planned(out, &question);
        }
        confirm("restore", &question, false)?;
    }
    let kept = if args.no_backup {
        None
    } else {
        let spinner = progress::spinner("keeping a backup of the current contents");
        let path = before_restore_path(store.path());
        store.backup(&path, ExistingFile::Refuse)?;
        drop(spinner);
        Some(path)
    };
    let spinner = progress::spinner("restoring");
    let report = store.restore(&args.from)?;
    drop(spinner);
    if args.json {
        let kept_backup = kept.as_ref().map(|p| p.display().to_string());
        print::json(
            out,
            &print::Restored {
                report: &report,
                kept_backup,
            },
        )
    } else {
        print::restored(out, &report, &args.from, kept.as_deref())
    }
}

/// Where restore keeps what it replaces: beside the database file, named for the time
/// (for a PostgreSQL database, whose "path" is its URL: in the current directory).
fn before_restore_path(db: &Path) -> PathBuf {
    // A file name, so ISO 8601's basic form: the stored form's ':' is not allowed in Windows
    // file names.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    if db.is_file() {
        let mut name = db.as_os_str().to_owned();
        name.push(format!(".before-restore-{stamp}"));
        PathBuf::from(name)
    } else {
        PathBuf::from(format!("sessiondb-before-restore-{stamp}.db"))
    }
}

/// Fails (exit status 1) when a source was skipped.
pub fn import(store: &Store, args: ImportArgs, out: &mut Output) -> Result<ExitCode, Failure> {
    interrupt::catch();
    let mut draw = progress::messages("importing");
    let mut bar = move |done: usize, total: usize| {
        draw(done, total);
        if interrupt::requested() {
            print::import_interrupted(done, total);
            std::process::exit(interrupt::STATUS);
        }
    };
    let options = ImportOptions {
        overwrite: !args.no_overwrite,
        dry_run: args.dry_run,
        ..ImportOptions::default()
    };
    let format = match args.format {
        Some(format) => format,
        None => detect_format(store, &args.path)?,
    };
    let path = &args.path;
    let report = match format {
        ImportFormat::Sessiondb => store.import_export_file(path, &options, &mut bar)?,
        ImportFormat::Praisonai => store.import_praisonai(path, &options, &mut bar)?,
        ImportFormat::OpenaiAgents => store.import_openai_agents(path, &options, &mut bar)?,
    };
    drop(bar);
    if args.json {
        print::json(out, &report)?;
    } else {
        print::imported(out, &report, args.dry_run)?;
    }
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn existing(force: bool) -> ExistingFile {
    if force {
        ExistingFile::Replace
    } else {
        ExistingFile::Refuse
    }
}

/// session files, an SQLite database (OpenAI Agents), or a JSON sessiondb export.
fn detect_format(store: &Store, path: &Path) -> Result<ImportFormat> {
    store.refuse_own_file(path, "import from")?;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        return Ok(ImportFormat::Praisonai);
    }
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    if &head[..read] == b"SQLite format 3\0" {
        return Ok(ImportFormat::OpenaiAgents);
    }
    if head[..read].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(ImportFormat::Sessiondb);
    }
    Err(Error::InvalidInput(format!(
        "{}: cannot tell its format (not a directory, an SQLite database or a JSON export); pass --format",
        path.display()
    )))
}

//! What writing a session's image will do, decided before anything is written: its branches in
//! order, the rows each one shares instead of copying them (with the parent session's current
//! history, or with a branch before it), which branch is the head, what each snapshot pins, and
//! how far the version clock must go. A pure function of the image (and of the parent's
//! history), so it is tested without a database; `write.rs` carries a plan out.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::{check_field, check_json, validate_branch_name, Message};

use super::beside::{self, Beside};
use super::image::{BranchExport, CompactionExport, SessionExport, SnapshotExport};

/// Versions count up from the largest name: leave them room.
const MAX_IMPORTED_VERSION: i64 = 1 << 53;

/// Rows already written that a branch can start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The parent session's current history.
    Parent,
    /// A branch planned before this one: its index in [`Plan::branches`].
    Branch(usize),
}

/// The first `length` messages of `from`, shared rather than written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shared {
    pub from: Source,
    pub length: usize,
}

/// One branch to write, in the image's order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BranchPlan<'m> {
    pub name: &'m str,
    pub created_at: &'m DateTime<Utc>,
    pub superseded_at: Option<&'m DateTime<Utc>>,
    /// The branch's whole history, inherited messages included.
    pub messages: &'m [Message],
    /// What its history holds beside the messages.
    pub beside: Beside<'m>,
    /// The compactions recorded on it (rows of the branch, not of messages, so they do not
    /// change what it shares).
    pub compactions: &'m [CompactionExport],
    /// What it starts with; `None` starts it empty.
    pub shares: Option<Shared>,
}

impl BranchPlan<'_> {
    /// The messages to write after the shared ones.
    pub fn to_write(&self) -> &[Message] {
        &self.messages[self.shares.map_or(0, |s| s.length)..]
    }
}

/// A snapshot to pin on a planned branch (its index in [`Plan::branches`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SnapshotPlan<'m> {
    pub branch: usize,
    pub snapshot: &'m SnapshotExport,
}

/// How a session's image is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan<'m> {
    pub branches: Vec<BranchPlan<'m>>,
    /// The head branch: an index in `branches`.
    pub head: usize,
    pub snapshots: Vec<SnapshotPlan<'m>>,
    /// How far the file's version clock goes before the session draws its version: the
    /// largest version a superseded branch's name `<name>@<version>` carries, so a later
    /// supersede cannot pick the same name (0 when there is none).
    pub clock_at_least: i64,
}

/// The session's own fields and what its histories hold beside their messages, checked
/// before anything else.
pub(super) fn validate(image: &SessionExport) -> Result<()> {
    for field in [
        &image.title,
        &image.agent_name,
        &image.agent_id,
        &image.user_id,
    ] {
        check_field("session field", field.as_deref())?;
    }
    check_json("metadata", &image.metadata)?;
    let values = &image.checkpoint_values;
    beside::check(&current(image), image.messages.len(), values, "")?;
    let session = format!("session {:?}: ", image.id);
    beside::check_compactions(&image.compactions, image.messages.len(), &session)?;
    for branch in image.branches.iter().flatten() {
        let place = format!("branch {:?}: ", branch.name);
        beside::check(&of_branch(branch), branch.messages.len(), values, &place)?;
        beside::check_compactions(
            &branch.compactions,
            branch.messages.len(),
            &format!("{session}{place}"),
        )?;
    }
    Ok(())
}

/// What the image's current history holds beside its messages.
pub(super) fn current(image: &SessionExport) -> Beside<'_> {
    Beside {
        usage_records: &image.usage_records,
        checkpoints: &image.checkpoints,
        writes: &image.checkpoint_writes,
    }
}

fn of_branch(branch: &BranchExport) -> Beside<'_> {
    Beside {
        usage_records: &branch.usage_records,
        checkpoints: &branch.checkpoints,
        writes: &branch.checkpoint_writes,
    }
}

/// Whether any history of the image holds something beside its messages.
pub(super) fn has_beside(image: &SessionExport) -> bool {
    !current(image).is_empty()
        || image
            .branches
            .iter()
            .flatten()
            .any(|b| !of_branch(b).is_empty())
}

/// Plans writing `image`, a session that does not exist yet. `parent` is the current history
/// of the session the image names as its parent, when that session exists: a branch starts
/// with the rows it has in common with it as well as with the branches before it.
pub(super) fn plan<'m>(image: &'m SessionExport, parent: Option<&[Message]>) -> Result<Plan<'m>> {
    let mut branches = branches_of(image);
    let clock_at_least = check_names(&branches)?;
    find_shared(&mut branches, parent);
    let head = head_of(image, &branches)?;
    let snapshots = snapshots_of(image, &branches)?;
    Ok(Plan {
        branches,
        head,
        snapshots,
        clock_at_least,
    })
}

/// Every branch of the image, or its current history alone as the head branch when the
/// export has no branches.
fn branches_of(image: &SessionExport) -> Vec<BranchPlan<'_>> {
    match &image.branches {
        Some(branches) => branches
            .iter()
            .map(|b| BranchPlan {
                name: &b.name,
                created_at: &b.created_at,
                superseded_at: b.superseded_at.as_ref(),
                messages: &b.messages,
                beside: of_branch(b),
                compactions: &b.compactions,
                shares: None,
            })
            .collect(),
        None => vec![BranchPlan {
            name: &image.head_branch,
            created_at: &image.created_at,
            superseded_at: None,
            messages: &image.messages,
            beside: current(image),
            compactions: &image.compactions,
            shares: None,
        }],
    }
}

/// Checks each branch's name, and that none appears twice; returns the largest version a
/// superseded branch's name carries.
fn check_names(branches: &[BranchPlan<'_>]) -> Result<i64> {
    let mut names = HashSet::new();
    let mut largest = 0;
    for branch in branches {
        if branch.superseded_at.is_some() {
            // Superseded heads are named `<name>@<version>`: keep the name, and keep the
            // version counter past it so a later supersede cannot pick the same name.
            let (base, v) = branch.name.rsplit_once('@').unwrap_or((branch.name, ""));
            validate_branch_name(base)?;
            let version = v.parse::<i64>().unwrap_or(0);
            if version > MAX_IMPORTED_VERSION {
                return Err(Error::invalid(format!(
                    "branch {:?}: version {version} is too large",
                    branch.name
                )));
            }
            largest = largest.max(version);
        } else {
            validate_branch_name(branch.name)?;
        }
        if !names.insert(branch.name) {
            return Err(Error::invalid(format!(
                "branch {:?} appears twice",
                branch.name
            )));
        }
    }
    Ok(largest)
}

/// Sets what each branch shares: the longest prefix it has in common with the parent's
/// history or with a branch before it (the first of them on a tie), cut where the two
/// differ in what is kept beside the messages (a shared row carries one record and one
/// checkpoint). The parent's rows are shared only by an image with nothing beside them
/// (see `write.rs`).
fn find_shared(branches: &mut [BranchPlan<'_>], parent: Option<&[Message]>) {
    // Alone, a branch has nothing to share with: skip the hashing.
    if branches.len() < 2 && parent.is_none() {
        return;
    }
    let mut prefixes = Prefixes::default();
    if let Some(parent) = parent {
        prefixes.add(Source::Parent, parent);
    }
    for n in 0..branches.len() {
        let messages = branches[n].messages;
        branches[n].shares = prefixes.longest(messages).and_then(|from| {
            // Check the candidate message by message: a hash match is not proof.
            let (theirs, beside) = match from {
                Source::Parent => (parent.unwrap_or_default(), Beside::default()),
                Source::Branch(i) => (branches[i].messages, branches[i].beside),
            };
            let length = common_prefix(theirs, messages);
            let length = beside.agreeing(&branches[n].beside, length);
            (length > 0).then_some(Shared { from, length })
        });
        if n + 1 < branches.len() {
            prefixes.add(Source::Branch(n), messages);
        }
    }
}

/// The head branch, whose history must be the image's current one.
fn head_of(image: &SessionExport, branches: &[BranchPlan<'_>]) -> Result<usize> {
    let head = branches
        .iter()
        .position(|b| b.name == image.head_branch)
        .ok_or_else(|| {
            Error::invalid(format!(
                "head branch {:?} is not among the branches",
                image.head_branch
            ))
        })?;
    if !branches[head]
        .messages
        .iter()
        .map(|m| &m.body)
        .eq(image.messages.iter().map(|m| &m.body))
    {
        return Err(Error::invalid(format!(
            "messages differ from the history of head branch {:?}",
            image.head_branch
        )));
    }
    if branches[head].compactions != image.compactions {
        return Err(Error::invalid(format!(
            "compactions differ from those of head branch {:?}",
            image.head_branch
        )));
    }
    if branches[head].beside != current(image) {
        return Err(Error::invalid(format!(
            "usage_records, checkpoints or checkpoint_writes differ from those of head branch \
             {:?}",
            image.head_branch
        )));
    }
    Ok(head)
}

/// Each snapshot's branch, checked to hold what the snapshot pins.
fn snapshots_of<'m>(
    image: &'m SessionExport,
    branches: &[BranchPlan<'_>],
) -> Result<Vec<SnapshotPlan<'m>>> {
    let mut planned = Vec::new();
    for snapshot in image.snapshots.iter().flatten() {
        let branch = branches
            .iter()
            .position(|b| b.name == snapshot.branch)
            .ok_or_else(|| {
                Error::invalid(format!("snapshot of unknown branch {:?}", snapshot.branch))
            })?;
        let branch_len = branches[branch].messages.len();
        if snapshot.length > branch_len as u64 {
            return Err(Error::invalid(format!(
                "snapshot pins {} messages of branch {:?}, which has {branch_len}",
                snapshot.length, snapshot.branch
            )));
        }
        check_field("label", snapshot.label.as_deref())?;
        check_json("metadata", &snapshot.metadata)?;
        planned.push(SnapshotPlan { branch, snapshot });
    }
    Ok(planned)
}

/// Messages two histories share from the start (same content and time, so a shared row is
/// exactly what each imported branch says).
fn common_prefix(a: &[Message], b: &[Message]) -> usize {
    a.iter()
        .zip(b)
        .take_while(|(a, b)| a.body == b.body && a.created_at == b.created_at)
        .count()
}

/// Every prefix of the histories planned so far, by (length, running hash) → source, so the
/// longest prefix a new branch shares with any of them is found in one pass over it instead
/// of comparing it with each (branches × history).
#[derive(Default)]
struct Prefixes(HashMap<(usize, u64), Source>);

impl Prefixes {
    fn add(&mut self, source: Source, history: &[Message]) {
        for (n, hash) in running_hashes(history).enumerate() {
            self.0.entry((n + 1, hash)).or_insert(source);
        }
    }

    /// The source whose history seems to share the longest prefix with `history` (a
    /// candidate: hashes can collide, so the caller compares).
    fn longest(&self, history: &[Message]) -> Option<Source> {
        let mut best = None;
        for (n, hash) in running_hashes(history).enumerate() {
            match self.0.get(&(n + 1, hash)) {
                Some(&source) => best = Some(source),
                None => break,
            }
        }
        best
    }
}

/// Hash of each prefix `history[..=i]`.
fn running_hashes(history: &[Message]) -> impl Iterator<Item = u64> + '_ {
    let mut running = 0u64;
    history.iter().map(move |m| {
        let mut hasher = DefaultHasher::new();
        running.hash(&mut hasher);
        m.created_at.hash(&mut hasher);
        // The JSON of the body: equal bodies give equal text (serde_json maps are ordered).
        let _ = serde_json::to_writer(HashWriter(&mut hasher), &m.body);
        running = hasher.finish();
        running
    })
}

struct HashWriter<'h>(&'h mut DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{Metadata, NewMessage};
    use crate::usage::{RecordedUsage, UsageRecord};

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, second).unwrap()
    }

    /// Messages with texts `texts`, the `i`th written at second `i`.
    fn history(texts: &[&str]) -> Vec<Message> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| Message {
                index: i as u64,
                body: NewMessage::user(*text),
                created_at: at(i as u32),
            })
            .collect()
    }

    fn branch(name: &str, texts: &[&str]) -> BranchExport {
        BranchExport {
            name: name.into(),
            created_at: at(0),
            superseded_at: None,
            messages: history(texts),
            ..BranchExport::default()
        }
    }

    fn superseded(name: &str, texts: &[&str]) -> BranchExport {
        BranchExport {
            superseded_at: Some(at(30)),
            ..branch(name, texts)
        }
    }

    /// A session whose current history is `texts` on `head`, with `branches` when given (as
    /// `export --all-branches` writes it).
    fn image(head: &str, texts: &[&str], branches: Option<Vec<BranchExport>>) -> SessionExport {
        SessionExport {
            id: "s".into(),
            title: None,
            agent_name: None,
            agent_id: None,
            user_id: None,
            metadata: Metadata::new(),
            parent_session: None,
            created_at: at(0),
            updated_at: at(40),
            head_branch: head.into(),
            messages: history(texts),
            branches,
            snapshots: None,
            ..SessionExport::default()
        }
    }

    fn snapshot(branch: &str, length: u64) -> SnapshotExport {
        SnapshotExport {
            label: None,
            metadata: Metadata::new(),
            branch: branch.into(),
            length,
            created_at: at(50),
        }
    }

    /// Each planned branch as (name, what it shares, how many messages it writes).
    fn outline<'p>(plan: &'p Plan<'_>) -> Vec<(&'p str, Option<Shared>, usize)> {
        plan.branches
            .iter()
            .map(|b| (b.name, b.shares, b.to_write().len()))
            .collect()
    }

    fn shares(from: Source, length: usize) -> Option<Shared> {
        Some(Shared { from, length })
    }

    fn refusal(image: &SessionExport) -> String {
        match plan(image, None) {
            Err(Error::InvalidInput(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_linear_session_is_one_branch_written_whole() {
        let image = image("main", &["a", "b", "c"], None);
        let plan = plan(&image, None).unwrap();
        assert_eq!(outline(&plan), [("main", None, 3)]);
        assert_eq!((plan.head, plan.clock_at_least), (0, 0));
        assert!(plan.snapshots.is_empty());
    }

    #[test]
    fn a_session_starts_with_the_rows_it_shares_with_its_parent() {
        let image = image("main", &["a", "b", "c"], None);
        let parent = history(&["a", "b", "x", "y"]);
        let plan = plan(&image, Some(&parent)).unwrap();
        assert_eq!(outline(&plan), [("main", shares(Source::Parent, 2), 1)]);
    }

    #[test]
    fn a_forked_branch_shares_the_prefix_of_the_branch_before_it() {
        let branches = vec![
            branch("main", &["a", "b", "c"]),
            branch("alt", &["a", "b", "x", "y"]),
            branch("third", &["a", "b", "x", "z"]),
        ];
        let image = image("alt", &["a", "b", "x", "y"], Some(branches));
        let plan = plan(&image, None).unwrap();
        assert_eq!(
            outline(&plan),
            [
                ("main", None, 3),
                ("alt", shares(Source::Branch(0), 2), 2),
                // The longest shared prefix wins: three messages of `alt`, not two of `main`.
                ("third", shares(Source::Branch(1), 3), 1),
            ]
        );
        assert_eq!(plan.head, 1);
    }

    #[test]
    fn a_branch_forked_at_index_0_shares_the_first_message_only() {
        let branches = vec![branch("main", &["a", "b"]), branch("alt", &["a", "x"])];
        let image = image("main", &["a", "b"], Some(branches));
        let plan = plan(&image, None).unwrap();
        assert_eq!(
            outline(&plan),
            [("main", None, 2), ("alt", shares(Source::Branch(0), 1), 1)]
        );
    }

    #[test]
    fn a_branch_that_differs_from_the_first_message_or_in_time_shares_nothing() {
        let mut later = branch("later", &["a", "b"]);
        later.messages[0].created_at = at(59);
        let branches = vec![branch("main", &["a", "b"]), branch("other", &["x"]), later];
        let image = image("main", &["a", "b"], Some(branches));
        let plan = plan(&image, None).unwrap();
        assert_eq!(
            outline(&plan),
            [("main", None, 2), ("other", None, 1), ("later", None, 2)]
        );
    }

    #[test]
    fn a_branch_shares_rows_only_while_their_records_agree() {
        let record = |index| UsageRecord {
            index,
            usage: RecordedUsage::default(),
            recorded_at: at(9),
        };
        let mut main = branch("main", &["a", "b", "c"]);
        main.usage_records = vec![record(0), record(2)];
        let mut alt = branch("alt", &["a", "b", "c", "d"]);
        alt.usage_records = vec![record(0), record(1)];
        let mut image = image("main", &["a", "b", "c"], Some(vec![main, alt]));
        image.usage_records = vec![record(0), record(2)];
        let plan = plan(&image, None).unwrap();
        // Message 1 has a record on alt and none on main: alt shares message 0 only.
        assert_eq!(
            outline(&plan),
            [("main", None, 3), ("alt", shares(Source::Branch(0), 1), 3)]
        );
        image.usage_records = vec![record(0)];
        assert_eq!(
            refusal(&image),
            "usage_records, checkpoints or checkpoint_writes differ from those of head branch \
             \"main\""
        );
    }

    #[test]
    fn a_compacted_session_shares_its_whole_history_with_the_superseded_head() {
        // What `export --all-branches` writes after `compact`: the old head, superseded at
        // version 6, and the new head with the same messages.
        let branches = vec![
            superseded("main@6", &["a", "b", "c", "d"]),
            branch("main", &["a", "b", "c", "d"]),
        ];
        let image = image("main", &["a", "b", "c", "d"], Some(branches));
        let plan = plan(&image, None).unwrap();
        assert_eq!(
            outline(&plan),
            [
                ("main@6", None, 4),
                ("main", shares(Source::Branch(0), 4), 0)
            ]
        );
        assert_eq!((plan.head, plan.clock_at_least), (1, 6));
    }

    #[test]
    fn snapshots_are_planned_on_their_branch() {
        let branches = vec![branch("main", &["a", "b"]), branch("alt", &["a", "x", "y"])];
        let mut image = image("main", &["a", "b"], Some(branches));
        image.snapshots = Some(vec![snapshot("alt", 3), snapshot("main", 0)]);
        let plan = plan(&image, None).unwrap();
        let pinned: Vec<(usize, u64)> = plan
            .snapshots
            .iter()
            .map(|s| (s.branch, s.snapshot.length))
            .collect();
        assert_eq!(pinned, [(1, 3), (0, 0)]);
    }

    #[test]
    fn a_head_or_snapshot_naming_a_missing_branch_is_refused_by_name() {
        let branches = vec![branch("main", &["a"])];
        let image_ = image("gone", &["a"], Some(branches.clone()));
        assert_eq!(
            refusal(&image_),
            "head branch \"gone\" is not among the branches"
        );
        let mut image_ = image("main", &["a"], Some(branches));
        image_.snapshots = Some(vec![snapshot("gone", 1)]);
        assert_eq!(refusal(&image_), "snapshot of unknown branch \"gone\"");
        image_.snapshots = Some(vec![snapshot("main", 2)]);
        assert_eq!(
            refusal(&image_),
            "snapshot pins 2 messages of branch \"main\", which has 1"
        );
    }

    #[test]
    fn branches_that_contradict_each_other_or_the_history_are_refused() {
        let twice = vec![branch("main", &["a"]), branch("main", &["a"])];
        assert_eq!(
            refusal(&image("main", &["a"], Some(twice))),
            "branch \"main\" appears twice"
        );
        let other_history = vec![branch("main", &["a", "b"])];
        assert_eq!(
            refusal(&image("main", &["a", "x"], Some(other_history))),
            "messages differ from the history of head branch \"main\""
        );
        let huge = vec![
            branch("main", &["a"]),
            superseded("main@9007199254740993", &[]),
        ];
        assert_eq!(
            refusal(&image("main", &["a"], Some(huge))),
            "branch \"main@9007199254740993\": version 9007199254740993 is too large"
        );
        let at_sign = vec![branch("a@b", &["a"])];
        assert!(refusal(&image("a@b", &["a"], Some(at_sign))).contains("reserved"));
    }
}

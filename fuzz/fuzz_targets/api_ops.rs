//! Random sequences of public API calls decoded from the fuzzer's bytes. Any panic is a bug;
//! after every refused call the store must read as before, and `check` must stay clean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiondb::{Error, NewMessage, SnapshotId, Store};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fuzz.db")).unwrap();
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let ids = ["a", "b", "c.d", ""];
    let mut steps = 0;
    while let (Some(op), Some(x), Some(y)) = (next(), next(), next()) {
        steps += 1;
        if steps > 64 {
            break;
        }
        let id = ids[x as usize % ids.len()];
        let text: String = (0..y % 16).map(|i| char::from(b'a' + (i ^ x) % 26)).collect();
        let before = store.chat_history_uncached(id, None).map(|h| h.to_vec()).ok();
        let result: Result<(), Error> = match op % 12 {
            0 => store.add_user_message(id, &text).map(drop),
            1 => store.add_message(id, NewMessage::tool(text.clone(), text.clone())).map(drop),
            2 => store.fork_session(id, Some(u64::from(y)), None).map(drop),
            3 => store.create_branch(id, &text, Some(u64::from(y) % 4)).map(drop),
            4 => store.switch_branch(id, &text).map(drop),
            5 => store.revert_to_message(id, u64::from(y)).map(drop),
            6 => store.create_snapshot(id, Some(&text), None).map(drop),
            7 => store.restore_snapshot(id, SnapshotId(i64::from(y))).map(drop),
            8 => store.set_chat_history(id, &[NewMessage::user(text.clone())]).map(drop),
            9 => store.clear(id).map(drop),
            10 => store.delete_session(id),
            _ => store.prune(std::time::Duration::ZERO, y % 2 == 0).map(drop),
        };
        if let Err(Error::InvalidInput(_) | Error::NotFound { .. }) = result {
            let after = store.chat_history_uncached(id, None).map(|h| h.to_vec()).ok();
            assert_eq!(before, after, "a refused call changed session {id:?}");
        }
    }
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
});

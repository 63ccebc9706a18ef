//! Arbitrary bytes as the JSON that `sessiondb set-history` and imports read: parsing and
//! storing never panic, and a refused history leaves the session as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiondb::{NewMessage, Store};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(messages) = serde_json::from_str::<Vec<NewMessage>>(text) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fuzz.db")).unwrap();
    store.add_user_message("s", "before").unwrap();
    match store.set_chat_history("s", &messages) {
        Ok(_) => {
            let stored: Vec<NewMessage> = store
                .chat_history("s", None)
                .unwrap()
                .iter()
                .cloned()
                .map(Into::into)
                .collect();
            assert_eq!(stored, messages);
        }
        Err(_) => {
            let history = store.chat_history("s", None).unwrap();
            assert_eq!(history.len(), 1);
            assert_eq!(history[0].content(), "before");
        }
    }
});

//! `sessiondb mcp` in a build without the feature `mcp` (the default one): the command
//! exists, says how to get the server, and opens nothing. The server itself is tested with
//! the official MCP client in bindings/python/tests/test_mcp.py.

#![cfg(not(feature = "mcp"))]

mod common;

use common::{cli_failure, cli_ok, temp_db};

const HOW: &str = "sessiondb: this sessiondb was built without the MCP server: build it with \
                   the `mcp` feature (from a checkout, `cargo install --path . --features mcp`, \
                   which needs Rust 1.88 or later)\n";

#[test]
fn without_the_feature_mcp_says_how_to_build_it_and_opens_nothing() {
    let (_dir, db) = temp_db();
    for args in [&["mcp"][..], &["mcp", "--allow-writes"]] {
        assert_eq!(cli_failure(&db, args), HOW);
        assert!(!db.exists(), "{args:?} created {}", db.display());
    }
    cli_ok(&db, &["add", "s", "user", "hi"]);
    assert_eq!(cli_failure(&db, &["mcp"]), HOW);
    assert_eq!(cli_ok(&db, &["history", "s"]), "[0] user: hi\n");
}

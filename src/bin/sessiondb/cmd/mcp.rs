//! `mcp`: the database as a Model Context Protocol server on standard input and output, for
//! agents that search and reread their own past sessions.
//!
//! Built on the official Rust SDK (`rmcp`), which needs a newer Rust than the rest of
//! sessiondb, so it is the cargo feature `mcp`; without it the command says how to get it.
//! Every tool and resource is one call of the library's public API, read afresh on each
//! call: another process's writes are visible to the next one. What a tool returns is JSON
//! (structured content, and the same JSON as its text), so message text stored in the
//! database cannot pass for anything else; a bad argument is a tool error naming it.

use std::process::ExitCode;

use sessiondb::Store;

use crate::args::McpArgs;
use crate::output::Failure;

#[cfg(feature = "mcp")]
mod arguments;
#[cfg(feature = "mcp")]
mod server;
#[cfg(feature = "mcp")]
mod stdout;

/// Serves until the client closes standard input (exit status 0) or standard output (status
/// 141, quietly, as every command after a closed pipe).
#[cfg(feature = "mcp")]
pub fn run(
    args: &McpArgs,
    read_only: bool,
    open: impl FnOnce() -> Result<Store, Failure>,
) -> Result<ExitCode, Failure> {
    use rmcp::service::{serve_server, QuitReason, ServerInitializeError};

    if args.allow_writes && read_only {
        return Err(Failure::Stopped(
            "--allow-writes and --read-only contradict each other: pass one".into(),
        ));
    }
    let store = open()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Stopped(format!("cannot start the MCP server: {e}")))?;
    let server = server::Server::new(store, args.allow_writes);
    let stdout = stdout::Stdout::new();
    let write_failure = stdout.failure();
    let write_failed = write_failure.clone();
    let outcome = runtime.block_on(async move {
        let running = match serve_server(server, (tokio::io::stdin(), stdout)).await {
            Ok(running) => running,
            // The client left before the handshake ended: nothing to serve.
            Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(QuitReason::Closed),
            Err(e) => return Err(e.to_string()),
        };
        let cancel = running.cancellation_token();
        tokio::select! {
            quit = running.waiting() => quit.map_err(|e| e.to_string()),
            () = write_failed.wait() => {
                cancel.cancel();
                Ok(QuitReason::Cancelled)
            }
        }
    });
    // A read of standard input in progress cannot be cancelled: do not wait for it.
    runtime.shutdown_background();
    if let Some(e) = write_failure.take() {
        return Err(Failure::Output(e));
    }
    match outcome {
        Ok(QuitReason::JoinError(e)) => {
            Err(Failure::Stopped(format!("the MCP server failed: {e}")))
        }
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::Stopped(format!("the MCP server failed: {e}"))),
    }
}

/// Without the feature: says how to build a `sessiondb` that has it, opening nothing.
#[cfg(not(feature = "mcp"))]
pub fn run(
    _args: &McpArgs,
    _read_only: bool,
    _open: impl FnOnce() -> Result<Store, Failure>,
) -> Result<ExitCode, Failure> {
    Err(Failure::Stopped(
        "this sessiondb was built without the MCP server: build it with the `mcp` feature \
         (from a checkout, `cargo install --path . --features mcp`, which needs Rust 1.88 or \
         later)"
            .into(),
    ))
}

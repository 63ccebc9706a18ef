//! A plain-tokio server over an `AsyncStore`: one line per request on a TCP connection.
//!
//! - `history SESSION` answers with the history, one `[index] role: content` line each, then
//!   `.`;
//! - `watch SESSION` prints the history, then every change as it commits (from any process):
//!   new messages, and a streamed reply chunk by chunk as `+text` lines.
//!
//! `cargo run --example async_server --features tokio` runs a demo against a temporary file:
//! it starts the server, connects a client that watches `chat-1`, and writes a turn with a
//! streamed reply from a blocking "worker". Pass an address (`127.0.0.1:7878`) and a database
//! path to serve until interrupted instead.

use std::time::Duration;

use sessiondb::{
    AsyncStore, HistoryUpdate, NewMessage, Store, StreamEnd, StreamUpdate, WatchCursor,
};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [addr, path] = args.as_slice() {
        let store = AsyncStore::open(path).await?;
        let listener = TcpListener::bind(addr).await?;
        println!("serving {path} on {}", listener.local_addr()?);
        return serve(listener, store).await;
    }
    demo().await
}

async fn serve(listener: TcpListener, store: AsyncStore) -> Result<(), Failure> {
    loop {
        let (socket, _) = listener.accept().await?;
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(socket, store).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn handle(socket: TcpStream, store: AsyncStore) -> Result<(), Failure> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        match line.split_once(' ') {
            Some(("history", session)) => {
                let history = store.chat_history(session, None).await?;
                print_messages(&mut write, &history).await?;
                write.write_all(b".\n").await?;
            }
            Some(("watch", session)) => return watch(&mut write, &store, session).await,
            _ => {
                write
                    .write_all(b"error: expected `history S` or `watch S`\n")
                    .await?
            }
        }
    }
    Ok(())
}

async fn watch(
    write: &mut (impl AsyncWrite + Unpin),
    store: &AsyncStore,
    session: &str,
) -> Result<(), Failure> {
    let (history, partial) = store.chat_history_with_partial(session, None).await?;
    print_messages(write, &history).await?;
    let mut changes = store
        .watch(session, WatchCursor::after(&history, partial.as_ref()))
        .await?;
    while let Some(change) = changes.recv().await {
        let change = change?;
        match &change.history {
            HistoryUpdate::Unchanged => {}
            HistoryUpdate::Appended(messages) => print_messages(write, messages).await?,
            HistoryUpdate::Replaced(history) => {
                write.write_all(b"-- history replaced --\n").await?;
                print_messages(write, history).await?;
            }
        }
        match &change.stream {
            StreamUpdate::Started => write.write_all(b"+ (streaming)\n").await?,
            StreamUpdate::Grew(text) => write.write_all(format!("+{text}\n").as_bytes()).await?,
            StreamUpdate::Unchanged | StreamUpdate::Ended => {}
        }
    }
    Ok(())
}

async fn print_messages(
    write: &mut (impl AsyncWrite + Unpin),
    messages: &[sessiondb::Message],
) -> Result<(), Failure> {
    for m in messages {
        let line = format!("[{}] {}: {}\n", m.index, m.role(), m.content());
        write.write_all(line.as_bytes()).await?;
    }
    Ok(())
}

async fn demo() -> Result<(), Failure> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sessions.db");
    let store = AsyncStore::open(&path).await?;
    store
        .add_message("chat-1", NewMessage::user("Where is Oslo?"))
        .await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, store.clone()));

    let mut client = TcpStream::connect(addr).await?;
    client.write_all(b"watch chat-1\n").await?;
    let mut lines = BufReader::new(client).lines();
    // The first line is the history so far: the watch is running.
    println!("client: {}", lines.next_line().await?.unwrap_or_default());

    // Another writer (here a blocking thread; it could be another process) streams a reply.
    let worker_path = path.clone();
    let worker = std::thread::spawn(move || -> sessiondb::Result<()> {
        let store = Store::open(worker_path)?;
        store.start_stream("chat-1", Some("demo-model"), None)?;
        for chunk in ["Oslo is ", "in ", "Norway."] {
            std::thread::sleep(Duration::from_millis(50));
            store.append_stream("chat-1", chunk)?;
        }
        store.finish_stream("chat-1", StreamEnd::default())?;
        Ok(())
    });
    while let Some(line) = lines.next_line().await? {
        println!("client: {line}");
        if line.starts_with("[1] assistant") {
            break;
        }
    }
    worker.join().map_err(|_| "the worker panicked")??;
    Ok(())
}

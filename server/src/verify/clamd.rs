//! ClamAV's clamd, as the verifier talks to it: an object streamed to `INSTREAM` over a unix
//! socket or TCP, and clamd's one-line answer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Streams `resp`'s body to clamd (`INSTREAM`) and returns its answer (`stream: OK`,
/// `stream: NAME FOUND`, `… ERROR`).
pub(super) async fn scan(clamd: &str, resp: reqwest::Response) -> Result<String, String> {
    if let Some(path) = clamd.strip_prefix("unix:") {
        #[cfg(unix)]
        {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("cannot connect to clamd at {path}: {e}"))?;
            return instream(stream, resp).await;
        }
        #[cfg(not(unix))]
        return Err(format!("unix sockets do not exist here: {path}"));
    }
    let addr = clamd.strip_prefix("tcp:").unwrap_or(clamd);
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to clamd at {addr}: {e}"))?;
    instream(stream, resp).await
}

async fn instream<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut conn: S,
    mut resp: reqwest::Response,
) -> Result<String, String> {
    let io = |e: std::io::Error| format!("clamd: {e}");
    conn.write_all(b"zINSTREAM\0").await.map_err(io)?;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the object: {e}"))?
    {
        // clamd takes chunks of at most its StreamMaxLength; S3's chunks are far smaller.
        let len = u32::try_from(chunk.len()).map_err(|_| "a chunk over 4 GiB".to_string())?;
        conn.write_all(&len.to_be_bytes()).await.map_err(io)?;
        if conn.write_all(&chunk).await.is_err() {
            // clamd closes the stream when it is over its size limit, and says so.
            break;
        }
    }
    let _ = conn.write_all(&0u32.to_be_bytes()).await;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.map_err(io)?;
    let answer = String::from_utf8_lossy(&answer)
        .trim_end_matches(['\0', '\n'])
        .to_string();
    if answer.is_empty() {
        return Err("clamd closed the connection without an answer".into());
    }
    Ok(answer)
}

/// Asks clamd at `clamd` whether it is up (`PING`, answered `PONG`).
pub(super) async fn ping(clamd: &str) -> Result<(), String> {
    async fn ask<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut conn: S,
    ) -> Result<String, std::io::Error> {
        conn.write_all(b"zPING\0").await?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer)
            .trim_end_matches(['\0', '\n'])
            .to_string())
    }
    let answer = if let Some(path) = clamd.strip_prefix("unix:") {
        #[cfg(unix)]
        {
            let conn = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("cannot connect to clamd at {path}: {e}"))?;
            ask(conn).await
        }
        #[cfg(not(unix))]
        return Err(format!("unix sockets do not exist here: {path}"));
    } else {
        let addr = clamd.strip_prefix("tcp:").unwrap_or(clamd);
        let conn = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to clamd at {addr}: {e}"))?;
        ask(conn).await
    }
    .map_err(|e| format!("clamd: {e}"))?;
    if answer == "PONG" {
        Ok(())
    } else {
        Err(format!("clamd answered {answer:?} to PING"))
    }
}

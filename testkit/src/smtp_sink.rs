//! A minimal real SMTP server for tests (the notifier tests and the end-to-end suite use it):
//! an RFC 5321 subset — EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
//! QUIT — enough for any client. It listens on a free loopback port and keeps every accepted
//! message raw, with its recipients.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Received messages: (recipients, raw message).
pub type Mailbox = Arc<Mutex<Vec<(Vec<String>, Vec<u8>)>>>;

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub messages: Mailbox,
}

impl SmtpSink {
    /// Listen on 127.0.0.1 (a free port); sessions run as tasks of the current runtime.
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let sink = SmtpSink {
            addr: listener.local_addr().expect("smtp sink addr"),
            messages: Arc::default(),
        };
        let messages = sink.messages.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let messages = messages.clone();
                tokio::spawn(async move {
                    let _ = session(sock, messages).await;
                });
            }
        });
        sink
    }

    /// `smtp://127.0.0.1:{port}` for `LEADSTREAM_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// A copy of what arrived so far.
    pub fn received(&self) -> Vec<(Vec<String>, Vec<u8>)> {
        self.messages.lock().expect("mailbox").clone()
    }
}

async fn session(sock: tokio::net::TcpStream, messages: Mailbox) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut rcpts = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            w.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                .await?;
        } else if cmd.starts_with("HELO") || cmd.starts_with("MAIL FROM") || cmd.starts_with("NOOP")
        {
            w.write_all(b"250 OK\r\n").await?;
        } else if cmd.starts_with("RSET") {
            rcpts.clear();
            w.write_all(b"250 OK\r\n").await?;
        } else if cmd.starts_with("RCPT TO") {
            rcpts.push(line.trim_end()[8..].trim().to_string());
            w.write_all(b"250 OK\r\n").await?;
        } else if cmd == "DATA" {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if r.read_until(b'\n', &mut l).await? == 0 {
                    return Ok(());
                }
                if l == b".\r\n" || l == b".\n" {
                    break;
                }
                // Undo dot-stuffing.
                if l.starts_with(b"..") {
                    l.remove(0);
                }
                data.extend_from_slice(&l);
            }
            messages
                .lock()
                .expect("mailbox")
                .push((std::mem::take(&mut rcpts), data));
            w.write_all(b"250 OK queued\r\n").await?;
        } else if cmd == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

//! Email notifications: rendering (seed 003/004 email fields) and sending over SMTP with lettre.
//!
//! A trigger with `emails` gets one message per address (each address is its own endpoint, so a
//! bounce at one does not resend to the others). The message is `multipart/alternative` with a
//! plain-text and an HTML part:
//! - subject: `email_subject`, or "{trigger}: lead {lead} reached score {score}" /
//!   "{trigger}: lead {lead} completed the sequence";
//! - preheader: `email_preheader` (hidden preview text at the top of the HTML, first line of
//!   the text part), defaulting to the headline;
//! - `email_message` first, then the lead's details: score, event, metadata, sequence events.
//!
//! Transport: `LEADSTREAM_SMTP_URL` (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`
//! for STARTTLS, `smtps://…:465` for implicit TLS; rustls) and `LEADSTREAM_SMTP_FROM`. With no
//! SMTP URL, messages are written as `.eml` files to `LEADSTREAM_EMAIL_DIR` (the dev mode).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header, Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::attempt::Outcome;
use crate::summary::Summary;
use leadstream_domain::fired::{TriggerFired, TriggerKind};

/// The rendered parts of one notification email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub preheader: String,
    pub text: String,
    pub html: String,
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Subjects are one line; drop control characters a tenant may have typed.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

pub fn render(f: &TriggerFired) -> Rendered {
    let s = Summary::of(f);
    let t = &f.targets;
    let subject = t
        .email_subject
        .as_deref()
        .map(one_line)
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| match s.kind {
            TriggerKind::Milestone => format!(
                "{}: lead {} reached score {}",
                s.trigger_name, s.lead_id, s.score
            ),
            TriggerKind::Sequence => {
                format!(
                    "{}: lead {} completed the sequence",
                    s.trigger_name, s.lead_id
                )
            }
        });
    let preheader = t
        .email_preheader
        .as_deref()
        .map(one_line)
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| s.headline());
    let message = t.email_message.as_deref().unwrap_or("").trim();

    let mut text = format!("{preheader}\n\n");
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:sans-serif\">\
         <div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">{}</div>",
        esc(&subject),
        esc(&preheader)
    );
    if !message.is_empty() {
        text.push_str(message);
        text.push_str("\n\n");
        for para in message.split("\n\n") {
            html.push_str(&format!("<p>{}</p>", esc(para).replace('\n', "<br>")));
        }
    }
    text.push_str(&format!("{}\n\n", s.headline()));
    html.push_str(&format!("<h2>{}</h2><table>", esc(&s.headline())));
    for (k, v) in s.facts() {
        text.push_str(&format!("{k}: {v}\n"));
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(&v)
        ));
    }
    html.push_str("</table>");
    if !s.metadata.is_empty() {
        text.push_str("\nMetadata:\n");
        html.push_str("<h3>Metadata</h3><ul>");
        for (k, v) in &s.metadata {
            text.push_str(&format!("  {k}: {v}\n"));
            html.push_str(&format!("<li><b>{}</b>: {}</li>", esc(k), esc(v)));
        }
        html.push_str("</ul>");
    }
    if !s.sequence_events.is_empty() {
        text.push_str("\nSequence events:\n");
        html.push_str("<h3>Sequence events</h3><ol>");
        for e in &s.sequence_events {
            text.push_str(&format!(
                "  {} at {} ({})\n",
                e.event_type, e.created_at, e.id
            ));
            html.push_str(&format!(
                "<li>{} at {} ({})</li>",
                esc(&e.event_type),
                esc(&e.created_at),
                esc(&e.id)
            ));
        }
        html.push_str("</ol>");
    }
    html.push_str("</body></html>");
    Rendered {
        subject,
        preheader,
        text,
        html,
    }
}

/// How emails leave the process.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// Dev mode: `.eml` files in a folder.
    Dir {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Dir { dir, .. } => write!(f, "Mailer::Dir({})", dir.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("LEADSTREAM_SMTP_URL is not usable: {0}")]
    Url(String),
    #[error("LEADSTREAM_SMTP_FROM `{0}` is not an email address")]
    From(String),
    #[error("cannot create the email folder {0}: {1}")]
    Dir(String, std::io::Error),
}

impl Mailer {
    pub fn smtp(url: &str, from: &str, timeout: Duration) -> Result<Mailer, MailerError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailerError::From(from.to_string()))?;
        // lettre's error text does not contain the URL (so no password reaches the log).
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailerError::Url(e.to_string()))?
            .timeout(Some(timeout))
            .build();
        Ok(Mailer::Smtp { transport, from })
    }

    pub fn dir(dir: PathBuf, from: &str) -> Result<Mailer, MailerError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailerError::From(from.to_string()))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| MailerError::Dir(dir.display().to_string(), e))?;
        Ok(Mailer::Dir {
            transport: AsyncFileTransport::new(&dir),
            dir,
            from,
        })
    }

    fn from(&self) -> &Mailbox {
        match self {
            Mailer::Smtp { from, .. } | Mailer::Dir { from, .. } => from,
        }
    }

    /// Build and send the notification for `f` to `to`.
    pub async fn send(&self, f: &TriggerFired, to: &str) -> Outcome {
        let to_text = to;
        let to: Mailbox = match to.parse() {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Permanent {
                    status: None,
                    error: format!("not an email address: {e}"),
                }
            }
        };
        let r = render(f);
        let built = Message::builder()
            .from(self.from().clone())
            .to(to)
            .subject(r.subject)
            // Stable per (fired id, recipient): a resend after a crash carries the same id.
            .message_id(Some(format!(
                "<{}.{}@leadstream>",
                f.fired_id,
                short_hash(to_text)
            )))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(r.text, r.html));
        let msg = match built {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Permanent {
                    status: None,
                    error: format!("cannot build the message: {e}"),
                }
            }
        };
        match self {
            Mailer::Smtp { transport, .. } => match transport.send(msg).await {
                Ok(resp) => Outcome::Delivered {
                    status: Some(smtp_code(&resp.code())),
                },
                Err(e) if e.is_permanent() => Outcome::Permanent {
                    status: e.status().map(|c| smtp_code(&c)),
                    error: format!("SMTP: {e}"),
                },
                Err(e) => Outcome::Retryable {
                    status: e.status().map(|c| smtp_code(&c)),
                    error: format!("SMTP: {e}"),
                    retry_after: None,
                },
            },
            Mailer::Dir { transport, .. } => match transport.send(msg).await {
                Ok(_) => Outcome::Delivered { status: None },
                Err(e) => Outcome::Retryable {
                    status: None,
                    error: format!("writing .eml: {e}"),
                    retry_after: None,
                },
            },
        }
    }
}

fn short_hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..6])
}

fn smtp_code(c: &lettre::transport::smtp::response::Code) -> u16 {
    c.to_string().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::{milestone, sequence};

    #[test]
    fn uses_the_trigger_fields_and_puts_the_message_first() {
        let mut f = milestone();
        f.targets.email_subject = Some("Hot Lead\r\nBcc: x@y".into());
        f.targets.email_preheader = Some("Someone is ready".into());
        f.targets.email_message = Some("A lead just crossed <75>!".into());
        let r = render(&f);
        assert_eq!(r.subject, "Hot Lead  Bcc: x@y");
        assert!(r
            .text
            .starts_with("Someone is ready\n\nA lead just crossed <75>!"));
        let msg_at = r.html.find("crossed &lt;75&gt;").unwrap();
        assert!(msg_at < r.html.find("Score").unwrap());
        assert!(r.html.contains("display:none") && r.html.contains("Someone is ready"));
        assert!(r.text.contains("page: /pricing") && r.text.contains("Score: 82"));
    }

    #[test]
    fn defaults_and_sequences() {
        let r = render(&milestone());
        assert_eq!(r.subject, "Hot Lead Alert: lead ld_123 reached score 82");
        let r = render(&sequence());
        assert_eq!(
            r.subject,
            "Buying Intent Sequence: lead ld_123 completed the sequence"
        );
        assert!(r
            .text
            .contains("whitepaper_download at 2025-01-12T14:30:00Z"));
    }

    #[tokio::test]
    async fn dev_mode_writes_eml_files() {
        let dir = std::env::temp_dir().join(format!("ls-eml-{}", std::process::id()));
        let m = Mailer::dir(dir.clone(), "LeadStream <leadstream@localhost>").unwrap();
        let out = m.send(&milestone(), "sales@example.com").await;
        assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");
        let n = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "eml")
            })
            .count();
        assert_eq!(n, 1);
        let bad = m.send(&milestone(), "not an address").await;
        assert!(matches!(bad, Outcome::Permanent { .. }));
        std::fs::remove_dir_all(dir).ok();
    }
}

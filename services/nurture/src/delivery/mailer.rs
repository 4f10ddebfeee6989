//! The mail transports, through lettre: SMTP (plain, STARTTLS or implicit TLS, with
//! credentials from a mounted file) or a file sink writing each mail as an `.eml` file. Every
//! mail carries `List-Unsubscribe` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
//! (RFC 8058).

use std::time::Duration;

use baton_shared::{
    BootError,
    settings::{DeliverySettings, MailTransport, SmtpSecurity},
};
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart, SinglePart,
        header::{ContentType, HeaderName, HeaderValue},
    },
    transport::smtp::{PoolConfig, authentication::Credentials},
};

use crate::store::sending::{Delivery, Outgoing};

pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_settings(d: &DeliverySettings) -> Result<Mailer, BootError> {
        let bad = |e: String| BootError::Settings(format!("delivery: {e}"));
        match d.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&d.outbox_dir)
                    .map_err(|e| bad(format!("outbox_dir {}: {e}", d.outbox_dir)))?;
                Ok(Mailer::File(AsyncFileTransport::new(&d.outbox_dir)))
            }
            MailTransport::Smtp => {
                let host = d.smtp_host.as_str();
                let builder = match d.smtp_security {
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    }
                    SmtpSecurity::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                            .map_err(|e| bad(e.to_string()))?
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| bad(e.to_string()))?,
                };
                let mut builder = builder
                    .port(d.smtp_port)
                    .timeout(Some(Duration::from_secs(d.smtp_timeout_seconds.max(1))))
                    .pool_config(PoolConfig::new().max_size(d.smtp_pool_size.max(1)));
                if !d.smtp_username.is_empty() {
                    let password = std::fs::read_to_string(&d.smtp_password_file).map_err(|e| {
                        bad(format!("smtp_password_file {}: {e}", d.smtp_password_file))
                    })?;
                    builder = builder.credentials(Credentials::new(
                        d.smtp_username.clone(),
                        password.trim_end_matches(['\r', '\n']).to_owned(),
                    ));
                }
                Ok(Mailer::Smtp(builder.build()))
            }
        }
    }

    /// Sends one mail; how it ended (a 5xx is a hard bounce, anything else that failed soft).
    pub async fn send(&self, out: &Outgoing) -> Delivery {
        let message = match build(out) {
            Ok(m) => m,
            Err(e) => return Delivery::HardBounce(format!("not sent: {e}")),
        };
        match self {
            Mailer::File(t) => match t.send(message).await {
                Ok(_) => Delivery::Delivered,
                Err(e) => Delivery::SoftBounce(format!("file sink: {e}")),
            },
            Mailer::Smtp(t) => match t.send(message).await {
                Ok(_) => Delivery::Delivered,
                Err(e) if e.is_permanent() => Delivery::HardBounce(e.to_string()),
                Err(e) => Delivery::SoftBounce(e.to_string()),
            },
        }
    }
}

/// The MIME message of a mail: text and HTML as alternatives, the RFC 8058 headers.
pub fn build(out: &Outgoing) -> Result<Message, String> {
    let from_name = Some(out.from_name.clone()).filter(|n| !n.is_empty());
    let from = Mailbox::new(
        from_name,
        out.from_address.parse().map_err(|e| format!("from: {e}"))?,
    );
    let to = Mailbox::new(
        None,
        out.to
            .parse()
            .map_err(|e| format!("to {:?}: {e}", out.to))?,
    );
    let mut b = Message::builder()
        .from(from)
        .to(to)
        .subject(out.subject.clone())
        .message_id(Some(out.message_id.clone()))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{}>", out.unsubscribe_url),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    if !out.reply_to.is_empty() {
        b = b.reply_to(Mailbox::new(
            None,
            out.reply_to.parse().map_err(|e| format!("reply_to: {e}"))?,
        ));
    }
    let built = match (out.html.is_empty(), out.text.is_empty()) {
        (false, false) => b.multipart(MultiPart::alternative_plain_html(
            out.text.clone(),
            out.html.clone(),
        )),
        (false, true) => b.singlepart(SinglePart::html(out.html.clone())),
        _ => b.header(ContentType::TEXT_PLAIN).body(out.text.clone()),
    };
    built.map_err(|e| e.to_string())
}

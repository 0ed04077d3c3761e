//! The transports: EVE file (size rotation) or unix socket, HTTP(S) webhooks, SMTP, syslog.
//! Each runs on its sink's worker thread, so blocking I/O with timeouts is fine here.

use super::delivery::{DeliveryError, Transport};
use super::render::{self, AlertEvent, SyslogHeader};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn io_err(target: &str, source: std::io::Error) -> DeliveryError {
    DeliveryError::Io { target: target.to_string(), source }
}

/// EVE JSON lines appended to a file; renamed to `FILE.1` .. `FILE.keep` past `rotate_bytes`.
#[derive(Debug)]
pub struct EveFile {
    pub path: PathBuf,
    /// 0: never rotate.
    pub rotate_bytes: u64,
    pub keep: u32,
    file: Option<(std::fs::File, u64)>,
}

impl EveFile {
    pub fn new(path: PathBuf, rotate_bytes: u64, keep: u32) -> EveFile {
        EveFile { path, rotate_bytes, keep, file: None }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let name = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(name(self.keep));
        for i in (1..self.keep).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        std::fs::rename(&self.path, name(1))
    }
}

impl Transport for EveFile {
    fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError> {
        let target = self.path.display().to_string();
        let mut buf = Vec::new();
        for e in events {
            serde_json::to_writer(&mut buf, &render::eve_json(e)).map_err(|e| io_err(&target, e.into()))?;
            buf.push(b'\n');
        }
        let size = self.file.as_ref().map(|(_, s)| *s);
        let size = match size {
            Some(s) => s,
            None => std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        };
        if self.rotate_bytes > 0 && size > 0 && size + buf.len() as u64 > self.rotate_bytes {
            self.rotate().map_err(|e| io_err(&target, e))?;
        }
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| io_err(&target, e))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some((f, len));
        }
        let (f, len) = self.file.as_mut().expect("opened above");
        if let Err(e) = f.write_all(&buf) {
            self.file = None;
            return Err(io_err(&target, e));
        }
        *len += buf.len() as u64;
        Ok(())
    }
}

/// EVE JSON to a unix socket: one line per record on a stream socket, one record per datagram.
#[derive(Debug)]
pub struct EveUnix {
    pub path: PathBuf,
    pub datagram: bool,
    stream: Option<UnixStream>,
}

impl EveUnix {
    pub fn new(path: PathBuf, datagram: bool) -> EveUnix {
        EveUnix { path, datagram, stream: None }
    }
}

impl Transport for EveUnix {
    fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError> {
        let target = format!("unix:{}", self.path.display());
        for e in events {
            let mut line = serde_json::to_vec(&render::eve_json(e)).map_err(|e| io_err(&target, e.into()))?;
            if self.datagram {
                let s = UnixDatagram::unbound().map_err(|e| io_err(&target, e))?;
                s.send_to(&line, &self.path).map_err(|e| io_err(&target, e))?;
                continue;
            }
            line.push(b'\n');
            if self.stream.is_none() {
                let s = UnixStream::connect(&self.path).map_err(|e| io_err(&target, e))?;
                let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
                self.stream = Some(s);
            }
            let s = self.stream.as_mut().expect("connected above");
            if let Err(e) = s.write_all(&line) {
                // Reconnect on the next attempt.
                self.stream = None;
                return Err(io_err(&target, e));
            }
        }
        Ok(())
    }
}

/// Which JSON body a webhook gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// netrec's alert JSON (the `netrec alerts --format jsonl` schema plus `event`).
    Generic,
    /// Slack incoming webhook: `{"text": .., "blocks": [..]}`.
    Slack,
    /// WeChat Work group robot: `{"msgtype": "markdown", "markdown": {"content": ..}}`.
    Wechat,
}

impl WebhookFormat {
    pub fn body(self, e: &AlertEvent) -> serde_json::Value {
        match self {
            WebhookFormat::Generic => render::generic_json(e),
            WebhookFormat::Slack => render::slack_json(e),
            WebhookFormat::Wechat => render::wechat_json(e),
        }
    }
}

/// HTTP(S) POST of one JSON body per event.
pub struct Webhook {
    agent: ureq::Agent,
    url: String,
    /// `scheme://host[:port]/***`: what errors and logs show.
    target: String,
    format: WebhookFormat,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL (tokens) or header values.
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The part of a URL safe to show: scheme and authority, the rest replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop `user:password@`.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = if rest.len() > authority.len() { "/***" } else { "" };
    format!("{scheme}://{host}{tail}")
}

/// Certificates of a PEM file (for `ca_file`).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, ureq::Error> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::Certificate(c) = item? {
            out.push(c);
        }
    }
    Ok(out)
}

impl Webhook {
    /// `roots`: trust only these CA certificates (a private CA) instead of the bundled Mozilla roots.
    pub fn new(
        url: String,
        format: WebhookFormat,
        headers: Vec<(String, String)>,
        timeout: Duration,
        roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    ) -> Webhook {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(r) = roots {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&r));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("netrec/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Webhook { agent, target: redacted_url(&url), url, format, headers }
    }
}

impl Transport for Webhook {
    fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError> {
        for e in events {
            let body =
                serde_json::to_vec(&self.format.body(e)).map_err(|e| io_err(&self.target, e.into()))?;
            let mut req = self.agent.post(&self.url).header("Content-Type", "application/json");
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let resp = req
                .send(&body[..])
                .map_err(|source| DeliveryError::Http { target: self.target.clone(), source })?;
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(DeliveryError::HttpStatus { target: self.target.clone(), status });
            }
            if self.format == WebhookFormat::Wechat {
                // The robot API answers 200 with `{"errcode": N}`; nonzero is a rejection.
                let text = resp.into_body().read_to_string().unwrap_or_default();
                let code = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("errcode").and_then(serde_json::Value::as_i64));
                if code.is_some_and(|c| c != 0) {
                    return Err(DeliveryError::Rejected {
                        target: self.target.clone(),
                        answer: render::truncate(&text, 200),
                    });
                }
            }
        }
        Ok(())
    }
}

/// SMTP TLS mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    /// Implicit TLS (SMTPS, usually port 465).
    Tls,
}

/// Settings of the SMTP sink (the password comes resolved from env or file).
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub subject_prefix: String,
    pub timeout: Duration,
    /// PEM CA certificates to trust in addition to the bundled Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// Mail digests over SMTP (lettre, rustls).
pub struct Email {
    mailer: lettre::SmtpTransport,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
    subject_prefix: String,
    target: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email").field("target", &self.target).finish_non_exhaustive()
    }
}

/// A bad mail address or TLS setting in the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailSetupError {
    #[error("mail address {address:?}: {source}")]
    Address {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("TLS parameters for {host}: {source}")]
    Tls {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

impl Email {
    pub fn new(s: &SmtpSettings) -> Result<Email, EmailSetupError> {
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        let parse = |a: &str| {
            a.parse::<lettre::message::Mailbox>()
                .map_err(|source| EmailSetupError::Address { address: a.to_string(), source })
        };
        let from = parse(&s.from)?;
        let to = s.to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        let tls_params = || {
            let tls_err = |source| EmailSetupError::Tls { host: s.host.clone(), source };
            let mut b = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let cert = lettre::transport::smtp::client::Certificate::from_pem(pem).map_err(tls_err)?;
                b = b.add_root_certificate(cert);
            }
            b.build().map_err(tls_err)
        };
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut b = lettre::SmtpTransport::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            b = b
                .credentials(lettre::transport::smtp::authentication::Credentials::new(u.clone(), p.clone()));
        }
        Ok(Email {
            mailer: b.build(),
            from,
            to,
            subject_prefix: s.subject_prefix.clone(),
            target: format!("smtp://{}:{}", s.host, s.port),
        })
    }
}

impl Transport for Email {
    fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError> {
        let (subject, body) = render::mail_digest(events, &self.subject_prefix);
        let mut b = lettre::Message::builder().from(self.from.clone()).subject(subject);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let msg = b
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|source| DeliveryError::Message { target: self.target.clone(), source })?;
        lettre::Transport::send(&self.mailer, &msg)
            .map_err(|source| DeliveryError::Smtp { target: self.target.clone(), source })?;
        Ok(())
    }
}

/// Where syslog messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogAddr {
    Udp(SocketAddr),
    /// RFC 6587 octet-counting framing.
    Tcp(SocketAddr),
    /// A datagram socket such as /dev/log.
    Unix(PathBuf),
}

impl std::fmt::Display for SyslogAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogAddr::Udp(a) => write!(f, "udp://{a}"),
            SyslogAddr::Tcp(a) => write!(f, "tcp://{a}"),
            SyslogAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// The MSG part: plain text or CEF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogFormat {
    Rfc5424,
    Cef,
}

/// RFC 5424 syslog over UDP, TCP or a unix datagram socket.
#[derive(Debug)]
pub struct Syslog {
    addr: SyslogAddr,
    header: SyslogHeader,
    format: SyslogFormat,
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
    timeout: Duration,
}

impl Syslog {
    pub fn new(addr: SyslogAddr, header: SyslogHeader, format: SyslogFormat, timeout: Duration) -> Syslog {
        Syslog { addr, header, format, tcp: None, udp: None, timeout }
    }

    /// The bytes of one message, without transport framing.
    pub fn message(&self, e: &AlertEvent) -> String {
        match self.format {
            SyslogFormat::Rfc5424 => render::rfc5424(&self.header, e, &render::headline(e), true),
            SyslogFormat::Cef => {
                render::rfc5424(&self.header, e, &render::cef(e, env!("CARGO_PKG_VERSION")), false)
            }
        }
    }
}

impl Transport for Syslog {
    fn deliver(&mut self, events: &[Arc<AlertEvent>]) -> Result<(), DeliveryError> {
        let target = self.addr.to_string();
        for e in events {
            let msg = self.message(e);
            match &self.addr {
                SyslogAddr::Udp(a) => {
                    if self.udp.is_none() {
                        let bind: SocketAddr =
                            if a.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                        self.udp = Some(UdpSocket::bind(bind).map_err(|e| io_err(&target, e))?);
                    }
                    let s = self.udp.as_ref().expect("bound above");
                    s.send_to(msg.as_bytes(), a).map_err(|e| io_err(&target, e))?;
                }
                SyslogAddr::Tcp(a) => {
                    if self.tcp.is_none() {
                        let s =
                            TcpStream::connect_timeout(a, self.timeout).map_err(|e| io_err(&target, e))?;
                        let _ = s.set_write_timeout(Some(self.timeout));
                        self.tcp = Some(s);
                    }
                    let s = self.tcp.as_mut().expect("connected above");
                    let framed = format!("{} {msg}", msg.len());
                    if let Err(e) = s.write_all(framed.as_bytes()) {
                        self.tcp = None;
                        return Err(io_err(&target, e));
                    }
                }
                SyslogAddr::Unix(p) => {
                    let s = UnixDatagram::unbound().map_err(|e| io_err(&target, e))?;
                    s.send_to(msg.as_bytes(), p).map_err(|e| io_err(&target, e))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_redaction_hides_path_query_and_userinfo() {
        assert_eq!(
            redacted_url("https://hooks.slack.com/services/T0/B1/SECRET"),
            "https://hooks.slack.com/***"
        );
        assert_eq!(redacted_url("https://u:pw@h:8443/x?key=abc"), "https://h:8443/***");
        assert_eq!(redacted_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn eve_file_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        let mut t = EveFile::new(path.clone(), 1500, 2);
        let e = Arc::new(AlertEvent { update: false, alert: crate::sinks::render::tests::alert() });
        for _ in 0..10 {
            t.deliver(std::slice::from_ref(&e)).unwrap();
        }
        let lines = |p: &std::path::Path| std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0);
        let (a, b, c) =
            (lines(&path), lines(&dir.path().join("eve.json.1")), lines(&dir.path().join("eve.json.2")));
        assert!(b > 0 && c > 0, "{a} {b} {c}");
        assert!(!dir.path().join("eve.json.3").exists());
        for p in [path.clone(), dir.path().join("eve.json.1")] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 1500);
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["event_type"], "alert");
            }
        }
    }
}

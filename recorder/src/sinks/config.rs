//! The delivery configuration (TOML, `--config FILE`): metrics address, delivery defaults and
//! the `[[sink]]` list. Parsed from spanned TOML so every mistake is reported as
//! `file:line:col: what is wrong`. `docs/config.example.toml` documents every key.
//!
//! Parsing opens nothing and reads no secret: `DeliveryConfig::start` resolves secrets (env vars,
//! files) and starts the workers.

use super::delivery::{Policy, SinkSet, SinkSpec};
use super::render::SyslogHeader;
use super::transport::{
    Email, EmailSetupError, EveFile, EveUnix, SmtpSettings, SmtpTls, Syslog, SyslogAddr, SyslogFormat,
    Webhook, WebhookFormat,
};
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A configuration mistake, with its place in the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {problem}")]
pub struct ConfigError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// Shown in the message itself (not as a separate cause, so it is not printed twice).
    pub problem: ConfigProblem,
}

/// What is wrong with a configuration value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    #[error("TOML syntax: {message}")]
    Syntax { message: String },
    #[error("unknown key `{key}` in {section} (known: {known})")]
    UnknownKey { key: String, section: String, known: String },
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("`{key}`: {reason}")]
    BadValue { key: String, reason: String },
    #[error("{section} needs `{key}`")]
    Missing { section: String, key: &'static str },
    #[error("duplicate sink name `{name}`")]
    DuplicateName { name: String },
}

/// Where a secret comes from; resolved only when the sinks start.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Literal(String),
    Env(String),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal(***)"),
            SecretSource::Env(v) => write!(f, "Env({v})"),
            SecretSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl SecretSource {
    /// `env:NAME`, `file:PATH`, anything else is the value itself.
    pub fn parse(s: &str) -> SecretSource {
        if let Some(v) = s.strip_prefix("env:") {
            SecretSource::Env(v.to_string())
        } else if let Some(p) = s.strip_prefix("file:") {
            SecretSource::File(PathBuf::from(p))
        } else {
            SecretSource::Literal(s.to_string())
        }
    }

    pub fn resolve(&self, sink: &str) -> Result<String, SetupError> {
        match self {
            SecretSource::Literal(s) => Ok(s.clone()),
            SecretSource::Env(var) => std::env::var(var)
                .map_err(|_| SetupError::SecretEnv { sink: sink.to_string(), var: var.clone() }),
            SecretSource::File(path) => {
                std::fs::read_to_string(path).map(|s| s.trim_end_matches(['\r', '\n']).to_string()).map_err(
                    |source| SetupError::SecretFile { sink: sink.to_string(), path: path.clone(), source },
                )
            }
        }
    }
}

/// Starting the sinks failed (never shows a secret's value).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("sink {sink}: environment variable {var} is not set")]
    SecretEnv { sink: String, var: String },
    #[error("sink {sink}: cannot read secret file {}", path.display())]
    SecretFile {
        sink: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sink {sink}")]
    Email {
        sink: String,
        #[source]
        source: EmailSetupError,
    },
    #[error("sink {sink}: cannot read CA file {}", path.display())]
    CaFile {
        sink: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sink {sink}: CA file {}", path.display())]
    CaParse {
        sink: String,
        path: PathBuf,
        #[source]
        source: ureq::Error,
    },
    #[error("sink {sink}: CA file {} holds no certificate", path.display())]
    CaEmpty { sink: String, path: PathBuf },
    #[error("starting sink workers")]
    Spawn(#[source] std::io::Error),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EveOutput {
    File { path: PathBuf, rotate_bytes: u64, keep: u32 },
    Unix { path: PathBuf, datagram: bool },
}

#[derive(Clone, Debug)]
pub enum SinkKind {
    Eve(EveOutput),
    Webhook {
        url: SecretSource,
        format: WebhookFormat,
        headers: Vec<(String, SecretSource)>,
        timeout: Duration,
        /// PEM file of the CA certificates to trust instead of the bundled roots.
        ca_file: Option<PathBuf>,
    },
    Email {
        settings: SmtpSettings,
        password: Option<SecretSource>,
        /// PEM file of CA certificates to trust in addition to the bundled roots.
        ca_file: Option<PathBuf>,
    },
    Syslog {
        addr: SyslogAddr,
        format: SyslogFormat,
        facility: u8,
        hostname: Option<String>,
        app_name: String,
        timeout: Duration,
    },
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Eve(_) => "eve",
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::Email { .. } => "email",
            SinkKind::Syslog { .. } => "syslog",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub name: String,
    pub policy: Policy,
    pub kind: SinkKind,
}

/// The whole delivery configuration.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// `[metrics] listen`.
    pub metrics: Option<SocketAddr>,
    /// How long `finish` waits for queued deliveries at the end of a run.
    pub shutdown_timeout: Duration,
    /// `[delivery]` defaults every sink starts from.
    pub defaults: Policy,
    pub sinks: Vec<SinkConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            metrics: None,
            shutdown_timeout: Duration::from_secs(10),
            defaults: Policy::default(),
            sinks: Vec::new(),
        }
    }
}

const TOP_KEYS: &[&str] = &["metrics", "delivery", "sink"];
const METRICS_KEYS: &[&str] = &["listen"];
const POLICY_KEYS: &[&str] =
    &["queue", "retries", "backoff_initial", "backoff_max", "rate_limit", "dedup_window", "updates"];
const DELIVERY_KEYS: &[&str] = &[
    "queue",
    "retries",
    "backoff_initial",
    "backoff_max",
    "rate_limit",
    "dedup_window",
    "updates",
    "shutdown_timeout",
];
const EVE_KEYS: &[&str] = &["path", "socket", "rotate_size", "rotate_keep"];
const WEBHOOK_KEYS: &[&str] = &["url", "url_env", "url_file", "format", "headers", "timeout", "ca_file"];
const EMAIL_KEYS: &[&str] = &[
    "server",
    "port",
    "tls",
    "username",
    "password",
    "password_env",
    "password_file",
    "from",
    "to",
    "digest_interval",
    "digest_max",
    "subject_prefix",
    "timeout",
    "ca_file",
];
const SYSLOG_KEYS: &[&str] = &["address", "format", "facility", "hostname", "app_name", "timeout"];

/// Every configuration key by section, for documentation checks.
pub fn known_keys() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("top level", TOP_KEYS),
        ("[metrics]", METRICS_KEYS),
        ("[delivery]", DELIVERY_KEYS),
        ("[[sink]] (all types)", &["type", "name"]),
        ("[[sink]] (all types)", POLICY_KEYS),
        ("[[sink]] type = \"eve\"", EVE_KEYS),
        ("[[sink]] type = \"webhook\"", WEBHOOK_KEYS),
        ("[[sink]] type = \"email\"", EMAIL_KEYS),
        ("[[sink]] type = \"syslog\"", SYSLOG_KEYS),
    ]
}

type Entry<'a, 'i> = (&'a Spanned<std::borrow::Cow<'i, str>>, &'a Spanned<DeValue<'i>>);

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: &Range<usize>, problem: ConfigProblem) -> ConfigError {
        let start = span.start.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, start)];
        let line = before.matches('\n').count() as u32 + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        ConfigError { file: self.file.to_string(), line, col, problem }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Entries sorted by position, so the first error reported is the first in the file.
fn entries<'a, 'i>(t: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// Typed access to one table's values, remembering the table's span for "missing" errors.
struct Table<'a, 'i> {
    cx: &'a Ctx<'a>,
    section: String,
    span: Range<usize>,
    t: &'a DeTable<'i>,
}

impl<'a, 'i> Table<'a, 'i> {
    fn check_keys(&self, known: &[&[&str]]) -> Result<(), ConfigError> {
        for (k, _) in entries(self.t) {
            if !known.iter().any(|set| set.contains(&k.get_ref().as_ref())) {
                let all: Vec<&str> = known.iter().flat_map(|s| s.iter().copied()).collect();
                return Err(self.cx.err(
                    &k.span(),
                    ConfigProblem::UnknownKey {
                        key: k.get_ref().to_string(),
                        section: self.section.clone(),
                        known: all.join(", "),
                    },
                ));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.t.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v)
    }

    fn wrong(&self, key: &str, v: &Spanned<DeValue<'_>>, expected: &'static str) -> ConfigError {
        self.cx.err(&v.span(), ConfigProblem::WrongType { key: key.to_string(), expected })
    }

    fn bad(&self, key: &str, v: &Spanned<DeValue<'_>>, reason: impl Into<String>) -> ConfigError {
        self.cx.err(&v.span(), ConfigProblem::BadValue { key: key.to_string(), reason: reason.into() })
    }

    fn missing(&self, key: &'static str) -> ConfigError {
        self.cx.err(&self.span, ConfigProblem::Missing { section: self.section.clone(), key })
    }

    fn str(&self, key: &str) -> Result<Option<(String, &'a Spanned<DeValue<'i>>)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some((s.to_string(), v))),
                _ => Err(self.wrong(key, v, "a string")),
            },
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.str(key)?.map(|(s, _)| s))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.get_ref().as_bool().map(Some).ok_or_else(|| self.wrong(key, v, "true or false")),
        }
    }

    fn uint(&self, key: &str, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let Some(i) = v.get_ref().as_integer() else {
            return Err(self.wrong(key, v, "an integer"));
        };
        let n = u64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map_err(|_| self.bad(key, v, format!("must be between 0 and {max}")))?;
        if n > max {
            return Err(self.bad(key, v, format!("must be between 0 and {max}")));
        }
        Ok(Some(n))
    }

    fn duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        let Some((s, v)) = self.str(key)? else { return Ok(None) };
        netrec_rules::ruleset::parse_duration(&s)
            .map(|ns| Some(Duration::from_nanos(ns)))
            .ok_or_else(|| self.bad(key, v, format!("bad duration {s:?} (e.g. 500ms, 30s, 10m, 1h)")))
    }

    /// A size: an integer (bytes) or a string such as "100M".
    fn size(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        match v.get_ref() {
            DeValue::String(s) => parse_size(s)
                .map(Some)
                .ok_or_else(|| self.bad(key, v, format!("bad size {s:?} (e.g. 512K, 100M, 1G)"))),
            DeValue::Integer(_) => self.uint(key, u64::MAX),
            _ => Err(self.wrong(key, v, "a size (\"100M\" or bytes)")),
        }
    }

    /// `key`, `key_env`, `key_file`: at most one of them.
    fn secret(&self, key: &str) -> Result<Option<SecretSource>, ConfigError> {
        let env_key = format!("{key}_env");
        let file_key = format!("{key}_file");
        let mut found: Vec<(SecretSource, &Spanned<DeValue<'_>>)> = Vec::new();
        if let Some((s, v)) = self.str(key)? {
            found.push((SecretSource::Literal(s), v));
        }
        if let Some((s, v)) = self.str(&env_key)? {
            found.push((SecretSource::Env(s), v));
        }
        if let Some((s, v)) = self.str(&file_key)? {
            found.push((SecretSource::File(PathBuf::from(s)), v));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop().map(|(s, _)| s)),
            _ => {
                Err(self.bad(key, found[1].1, format!("give only one of `{key}`, `{env_key}`, `{file_key}`")))
            }
        }
    }
}

/// `512`, `64K`, `16M`, `2G` (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        c if c.is_ascii_digit() => (s, 1u64),
        c => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return None,
            };
            (&s[..s.len() - 1], mul)
        }
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// `udp://HOST:PORT`, `tcp://HOST:PORT`, `unix:///dev/log` (or `unix:/dev/log`).
pub fn parse_syslog_addr(s: &str) -> Result<SyslogAddr, String> {
    let resolve = |hp: &str| -> Result<SocketAddr, String> {
        hp.to_socket_addrs()
            .map_err(|e| format!("cannot resolve {hp:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{hp:?} resolves to no address"))
    };
    if let Some(hp) = s.strip_prefix("udp://") {
        Ok(SyslogAddr::Udp(resolve(hp)?))
    } else if let Some(hp) = s.strip_prefix("tcp://") {
        Ok(SyslogAddr::Tcp(resolve(hp)?))
    } else if let Some(p) = s.strip_prefix("unix://").or_else(|| s.strip_prefix("unix:")) {
        if p.is_empty() {
            return Err("unix: needs a socket path".into());
        }
        Ok(SyslogAddr::Unix(PathBuf::from(p)))
    } else {
        Err(format!("{s:?} is not udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"))
    }
}

/// Syslog facility by name (`local0`..`local7`, `user`, `daemon`, `auth`, `security`) or number.
pub fn parse_facility(s: &str) -> Option<u8> {
    let n = match s {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "authpriv" => 10,
        "security" => 13,
        _ => match s.strip_prefix("local").and_then(|d| d.parse::<u8>().ok()) {
            Some(d) if d <= 7 => 16 + d,
            _ => return s.parse::<u8>().ok().filter(|n| *n <= 23),
        },
    };
    Some(n)
}

fn parse_webhook_format(s: &str) -> Option<WebhookFormat> {
    Some(match s {
        "generic" | "json" => WebhookFormat::Generic,
        "slack" => WebhookFormat::Slack,
        "wechat" | "wecom" => WebhookFormat::Wechat,
        _ => return None,
    })
}

impl DeliveryConfig {
    /// Parse a configuration file's text; `file_name` is used in error messages.
    pub fn parse(file_name: &str, text: &str) -> Result<DeliveryConfig, ConfigError> {
        let cx = Ctx { file: file_name, text };
        let doc = DeTable::parse(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(&span, ConfigProblem::Syntax { message: e.message().trim().to_string() })
        })?;
        let root = Table { cx: &cx, section: "the top level".into(), span: doc.span(), t: doc.get_ref() };
        root.check_keys(&[TOP_KEYS])?;
        let mut cfg = DeliveryConfig::default();
        let as_table = |key: &str, v: &'_ Spanned<DeValue<'_>>| -> Result<(), ConfigError> {
            if v.get_ref().is_table() { Ok(()) } else { Err(root.wrong(key, v, "a table")) }
        };
        if let Some(v) = root.get("metrics") {
            as_table("metrics", v)?;
            let t = Table {
                cx: &cx,
                section: "[metrics]".into(),
                span: v.span(),
                t: v.get_ref().as_table().expect("checked"),
            };
            t.check_keys(&[METRICS_KEYS])?;
            if let Some((s, sv)) = t.str("listen")? {
                cfg.metrics = Some(
                    s.parse::<SocketAddr>()
                        .map_err(|_| t.bad("listen", sv, format!("{s:?} is not an IP:PORT address")))?,
                );
            }
        }
        if let Some(v) = root.get("delivery") {
            as_table("delivery", v)?;
            let t = Table {
                cx: &cx,
                section: "[delivery]".into(),
                span: v.span(),
                t: v.get_ref().as_table().expect("checked"),
            };
            t.check_keys(&[DELIVERY_KEYS])?;
            cfg.defaults = policy(&t, cfg.defaults.clone())?;
            if let Some(d) = t.duration("shutdown_timeout")? {
                cfg.shutdown_timeout = d;
            }
        }
        if let Some(v) = root.get("sink") {
            let DeValue::Array(arr) = v.get_ref() else {
                return Err(root.wrong("sink", v, "an array of tables ([[sink]])"));
            };
            for (i, item) in arr.iter().enumerate() {
                let DeValue::Table(tab) = item.get_ref() else {
                    return Err(root.wrong("sink", item, "an array of tables ([[sink]])"));
                };
                let t = Table { cx: &cx, section: format!("[[sink]] #{}", i + 1), span: item.span(), t: tab };
                let sink = parse_sink(&t, &cfg.defaults, i)?;
                if cfg.sinks.iter().any(|s| s.name == sink.name) {
                    let span = t.get("name").map_or(item.span(), |v| v.span());
                    return Err(cx.err(&span, ConfigProblem::DuplicateName { name: sink.name }));
                }
                cfg.sinks.push(sink);
            }
        }
        Ok(cfg)
    }

    /// Read and parse a configuration file.
    pub fn load(path: &std::path::Path) -> Result<DeliveryConfig, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
        Ok(DeliveryConfig::parse(&path.display().to_string(), &text)?)
    }

    /// Add a sink built from a command-line flag, named `<type>` (or `<type>-N` when taken).
    pub fn add_sink(&mut self, kind: SinkKind) {
        let base = kind.type_name();
        let mut name = base.to_string();
        let mut n = 2;
        while self.sinks.iter().any(|s| s.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let mut policy = self.defaults.clone();
        if let SinkKind::Email { .. } = kind {
            policy.batch_interval.get_or_insert(Duration::from_secs(60));
        }
        self.sinks.push(SinkConfig { name, policy, kind });
    }

    /// Resolve secrets, build the transports and start one worker per sink.
    pub fn start(&self) -> Result<SinkSet, SetupError> {
        let mut specs = Vec::with_capacity(self.sinks.len());
        for s in &self.sinks {
            specs.push(build(s)?);
        }
        SinkSet::start(specs).map_err(SetupError::Spawn)
    }
}

/// A configuration file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{}: cannot read configuration", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] ConfigError),
}

fn policy(t: &Table<'_, '_>, mut p: Policy) -> Result<Policy, ConfigError> {
    if let Some(n) = t.uint("queue", 1 << 20)? {
        p.queue = (n as usize).max(1);
    }
    if let Some(n) = t.uint("retries", 100)? {
        p.retries = n as u32;
    }
    if let Some(d) = t.duration("backoff_initial")? {
        p.backoff_initial = d;
    }
    if let Some(d) = t.duration("backoff_max")? {
        p.backoff_max = d;
    }
    if let Some(n) = t.uint("rate_limit", 1_000_000)? {
        p.rate_per_minute = n as u32;
    }
    if let Some(d) = t.duration("dedup_window")? {
        p.dedup_window = d;
    }
    if let Some(b) = t.bool("updates")? {
        p.updates = b;
    }
    Ok(p)
}

fn parse_sink(t: &Table<'_, '_>, defaults: &Policy, index: usize) -> Result<SinkConfig, ConfigError> {
    let Some((kind, kv)) = t.str("type")? else { return Err(t.missing("type")) };
    let extra: &[&str] = match kind.as_str() {
        "eve" => EVE_KEYS,
        "webhook" => WEBHOOK_KEYS,
        "email" => EMAIL_KEYS,
        "syslog" => SYSLOG_KEYS,
        other => {
            return Err(t.bad(
                "type",
                kv,
                format!("unknown sink type {other:?} (eve, webhook, email, syslog)"),
            ));
        }
    };
    t.check_keys(&[&["type", "name"], POLICY_KEYS, extra])?;
    let name = t.string("name")?.unwrap_or_else(|| format!("{kind}-{}", index + 1));
    let mut p = policy(t, defaults.clone())?;
    let timeout = t.duration("timeout")?.unwrap_or(Duration::from_secs(10));
    let kind = match kind.as_str() {
        "eve" => {
            let path = t.str("path")?;
            let socket = t.str("socket")?;
            let out = match (path, socket) {
                (Some((p, _)), None) => EveOutput::File {
                    path: PathBuf::from(p),
                    rotate_bytes: t.size("rotate_size")?.unwrap_or(0),
                    keep: t.uint("rotate_keep", 1000)?.unwrap_or(5) as u32,
                },
                (None, Some((s, sv))) => {
                    let (datagram, path) = if let Some(p) = s.strip_prefix("unix_dgram:") {
                        (true, p)
                    } else if let Some(p) = s.strip_prefix("unix_stream:").or_else(|| s.strip_prefix("unix:"))
                    {
                        (false, p)
                    } else {
                        return Err(t.bad("socket", sv, "use unix_stream:/PATH or unix_dgram:/PATH"));
                    };
                    EveOutput::Unix { path: PathBuf::from(path), datagram }
                }
                (Some(_), Some((_, sv))) => {
                    return Err(t.bad("socket", sv, "give either `path` or `socket`"));
                }
                (None, None) => return Err(t.missing("path")),
            };
            SinkKind::Eve(out)
        }
        "webhook" => {
            let url = t.secret("url")?.ok_or_else(|| t.missing("url"))?;
            if let SecretSource::Literal(u) = &url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                let v = t.get("url").expect("literal url present");
                return Err(t.bad("url", v, "must start with http:// or https://"));
            }
            let format = match t.str("format")? {
                None => WebhookFormat::Generic,
                Some((f, fv)) => parse_webhook_format(&f).ok_or_else(|| {
                    t.bad("format", fv, format!("unknown format {f:?} (generic, slack, wechat)"))
                })?,
            };
            let mut headers = Vec::new();
            if let Some(hv) = t.get("headers") {
                let Some(ht) = hv.get_ref().as_table() else { return Err(t.wrong("headers", hv, "a table")) };
                for (k, v) in entries(ht) {
                    let Some(s) = v.get_ref().as_str() else {
                        return Err(t.wrong(&format!("headers.{}", k.get_ref()), v, "a string"));
                    };
                    headers.push((k.get_ref().to_string(), SecretSource::parse(s)));
                }
            }
            let ca_file = t.string("ca_file")?.map(PathBuf::from);
            SinkKind::Webhook { url, format, headers, timeout, ca_file }
        }
        "email" => {
            let server = t.string("server")?.ok_or_else(|| t.missing("server"))?;
            let tls = match t.str("tls")? {
                None => SmtpTls::StartTls,
                Some((s, sv)) => match s.as_str() {
                    "none" => SmtpTls::None,
                    "starttls" => SmtpTls::StartTls,
                    "tls" => SmtpTls::Tls,
                    _ => return Err(t.bad("tls", sv, "use none, starttls or tls")),
                },
            };
            let default_port = match tls {
                SmtpTls::None => 25,
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
            };
            let port = t.uint("port", 65535)?.map_or(default_port, |n| n as u16);
            let from = t.string("from")?.ok_or_else(|| t.missing("from"))?;
            let to = match t.get("to") {
                None => return Err(t.missing("to")),
                Some(v) => match v.get_ref() {
                    DeValue::String(s) => vec![s.to_string()],
                    DeValue::Array(a) => {
                        let mut out = Vec::new();
                        for item in a.iter() {
                            out.push(
                                item.get_ref()
                                    .as_str()
                                    .ok_or_else(|| t.wrong("to", item, "a string"))?
                                    .to_string(),
                            );
                        }
                        out
                    }
                    _ => return Err(t.wrong("to", v, "a string or an array of strings")),
                },
            };
            for (key, addr, v) in std::iter::once(("from", &from, t.get("from")))
                .chain(to.iter().map(|a| ("to", a, t.get("to"))))
            {
                if let (Err(e), Some(v)) = (addr.parse::<lettre::message::Mailbox>(), v) {
                    return Err(t.bad(key, v, format!("bad mail address {addr:?}: {e}")));
                }
            }
            p.batch_interval = Some(t.duration("digest_interval")?.unwrap_or(Duration::from_secs(60)));
            p.batch_max = t.uint("digest_max", 10_000)?.unwrap_or(100).max(1) as usize;
            let password = t.secret("password")?;
            let username = t.string("username")?;
            SinkKind::Email {
                settings: SmtpSettings {
                    host: server,
                    port,
                    tls,
                    username,
                    password: None,
                    from,
                    to,
                    subject_prefix: t.string("subject_prefix")?.unwrap_or_else(|| "[netrec]".into()),
                    timeout,
                    ca_pem: None,
                },
                password,
                ca_file: t.string("ca_file")?.map(PathBuf::from),
            }
        }
        _ => {
            let (a, av) = t.str("address")?.ok_or_else(|| t.missing("address"))?;
            let addr = parse_syslog_addr(&a).map_err(|reason| t.bad("address", av, reason))?;
            let format = match t.str("format")? {
                None => SyslogFormat::Rfc5424,
                Some((f, fv)) => match f.as_str() {
                    "rfc5424" => SyslogFormat::Rfc5424,
                    "cef" => SyslogFormat::Cef,
                    _ => return Err(t.bad("format", fv, "use rfc5424 or cef")),
                },
            };
            let facility = match t.str("facility")? {
                None => 16,
                Some((f, fv)) => parse_facility(&f).ok_or_else(|| {
                    t.bad(
                        "facility",
                        fv,
                        format!("unknown facility {f:?} (local0..local7, user, daemon, auth, or 0..23)"),
                    )
                })?,
            };
            SinkKind::Syslog {
                addr,
                format,
                facility,
                hostname: t.string("hostname")?,
                app_name: t.string("app_name")?.unwrap_or_else(|| "netrec".into()),
                timeout,
            }
        }
    };
    Ok(SinkConfig { name, policy: p, kind })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn read_ca(sink: &str, path: &std::path::Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::CaFile {
        sink: sink.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

fn build(s: &SinkConfig) -> Result<SinkSpec, SetupError> {
    let mut secrets = Vec::new();
    let transport: Box<dyn super::delivery::Transport> = match &s.kind {
        SinkKind::Eve(EveOutput::File { path, rotate_bytes, keep }) => {
            Box::new(EveFile::new(path.clone(), *rotate_bytes, *keep))
        }
        SinkKind::Eve(EveOutput::Unix { path, datagram }) => Box::new(EveUnix::new(path.clone(), *datagram)),
        SinkKind::Webhook { url, format, headers, timeout, ca_file } => {
            let u = url.resolve(&s.name)?;
            // The whole URL and its path/query are secrets (Slack and WeChat put tokens there).
            if let Some((_, rest)) = u.split_once("://")
                && let Some(i) = rest.find(['/', '?'])
            {
                secrets.push(rest[i..].to_string());
            }
            secrets.push(u.clone());
            let mut hs = Vec::new();
            for (k, v) in headers {
                let val = v.resolve(&s.name)?;
                if !matches!(v, SecretSource::Literal(_)) || k.eq_ignore_ascii_case("authorization") {
                    secrets.push(val.clone());
                }
                hs.push((k.clone(), val));
            }
            let roots = match ca_file {
                None => None,
                Some(p) => {
                    let pem = read_ca(&s.name, p)?;
                    let certs = super::transport::pem_certificates(&pem).map_err(|source| {
                        SetupError::CaParse { sink: s.name.clone(), path: p.clone(), source }
                    })?;
                    if certs.is_empty() {
                        return Err(SetupError::CaEmpty { sink: s.name.clone(), path: p.clone() });
                    }
                    Some(certs)
                }
            };
            Box::new(Webhook::new(u, *format, hs, *timeout, roots))
        }
        SinkKind::Email { settings, password, ca_file } => {
            let mut st = settings.clone();
            if let Some(p) = ca_file {
                st.ca_pem = Some(read_ca(&s.name, p)?);
            }
            if let Some(p) = password {
                let pw = p.resolve(&s.name)?;
                secrets.push(pw.clone());
                st.password = Some(pw);
            }
            Box::new(Email::new(&st).map_err(|source| SetupError::Email { sink: s.name.clone(), source })?)
        }
        SinkKind::Syslog { addr, format, facility, hostname: h, app_name, timeout } => {
            let header = SyslogHeader {
                facility: *facility,
                hostname: h.clone().unwrap_or_else(hostname),
                app_name: app_name.clone(),
                procid: std::process::id().to_string(),
            };
            Box::new(Syslog::new(addr.clone(), header, *format, *timeout))
        }
    };
    Ok(SinkSpec {
        name: s.name.clone(),
        kind: s.kind.type_name(),
        policy: s.policy.clone(),
        transport,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        DeliveryConfig::parse("c.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn parses_sinks_and_defaults() {
        let c = DeliveryConfig::parse(
            "c.toml",
            r#"
[metrics]
listen = "127.0.0.1:9477"
[delivery]
retries = 2
dedup_window = "1m"
[[sink]]
type = "eve"
path = "/tmp/eve.json"
rotate_size = "1M"
[[sink]]
type = "syslog"
name = "siem"
address = "udp://127.0.0.1:5514"
format = "cef"
retries = 7
"#,
        )
        .unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:9477".parse().unwrap()));
        assert_eq!(c.sinks.len(), 2);
        assert_eq!(c.sinks[0].name, "eve-1");
        assert_eq!(c.sinks[0].policy.retries, 2);
        assert_eq!(c.sinks[0].policy.dedup_window, Duration::from_secs(60));
        assert!(matches!(
            &c.sinks[0].kind,
            SinkKind::Eve(EveOutput::File { rotate_bytes: 1_048_576, keep: 5, .. })
        ));
        assert_eq!(c.sinks[1].policy.retries, 7);
        assert!(matches!(&c.sinks[1].kind, SinkKind::Syslog { format: SyslogFormat::Cef, facility: 16, .. }));
    }

    #[test]
    fn errors_point_at_line_and_column() {
        assert_eq!(
            err("[[sink]]\ntype = \"eve\"\npath = \"x\"\nrotate_sise = 5\n"),
            "c.toml:4:1: unknown key `rotate_sise` in [[sink]] #1 (known: type, name, queue, retries, backoff_initial, backoff_max, rate_limit, dedup_window, updates, path, socket, rotate_size, rotate_keep)"
        );
        assert_eq!(
            err("[[sink]]\ntype = \"pager\"\n"),
            "c.toml:2:8: `type`: unknown sink type \"pager\" (eve, webhook, email, syslog)"
        );
        assert_eq!(err("[delivery]\nretries = \"3\"\n"), "c.toml:2:11: `retries` must be an integer");
        assert_eq!(
            err("[[sink]]\ntype = \"webhook\"\nurl = \"ftp://x\"\n"),
            "c.toml:3:7: `url`: must start with http:// or https://"
        );
        assert_eq!(
            err("[[sink]]\ntype = \"syslog\"\naddress = \"udp:/x\"\n").split(": `address`").next().unwrap(),
            "c.toml:3:11"
        );
        assert!(err("[metrics\n").starts_with("c.toml:1:"), "{}", err("[metrics\n"));
        assert_eq!(
            err("[[sink]]\ntype = \"email\"\nserver = \"h\"\nfrom = \"a@b\"\n"),
            "c.toml:1:1: [[sink]] #1 needs `to`"
        );
        assert_eq!(
            err(
                "[[sink]]\ntype = \"eve\"\nname = \"a\"\npath = \"x\"\n[[sink]]\ntype = \"eve\"\nname = \"a\"\npath = \"y\"\n"
            ),
            "c.toml:7:8: duplicate sink name `a`"
        );
    }

    #[test]
    fn secrets_from_env_and_file_are_not_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret-file\n").unwrap();
        assert_eq!(SecretSource::File(f.clone()).resolve("x").unwrap(), "s3cret-file");
        assert!(matches!(
            SecretSource::Env("NETREC_TEST_SURELY_UNSET".into()).resolve("x"),
            Err(SetupError::SecretEnv { .. })
        ));
        let c = DeliveryConfig::parse(
            "c.toml",
            "[[sink]]\ntype = \"webhook\"\nurl = \"https://h/T/SECRETTOKEN\"\nheaders = { Authorization = \"Bearer abcdef\" }\n",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SECRETTOKEN") && !dbg.contains("abcdef"), "{dbg}");
    }

    #[test]
    fn sizes_facilities_addresses() {
        assert_eq!(parse_size("100M"), Some(100 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1X"), None);
        assert_eq!(parse_facility("local7"), Some(23));
        assert_eq!(parse_facility("local8"), None);
        assert_eq!(parse_facility("4"), Some(4));
        assert_eq!(parse_syslog_addr("unix:///dev/log").unwrap(), SyslogAddr::Unix("/dev/log".into()));
        assert_eq!(
            parse_syslog_addr("tcp://127.0.0.1:601").unwrap(),
            SyslogAddr::Tcp("127.0.0.1:601".parse().unwrap())
        );
        assert!(parse_syslog_addr("127.0.0.1:514").is_err());
    }
}

//! `mia campaign ...` and `mia worker`: operating campaigns in a shared database.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use mia::safety::{ContentGuard, SendGuard};
use mia::store::{PostgresStore, SqliteStore};
use mia::telegram::bot_api::{BotApiConfig, BotApiTransport, BotToken};
use mia::telegram::{SimConfig, SimTelegram};
use mia::{
    Agent, CampaignId, Clock, Error, IdempotencyKey, Operator, Result, Store, SystemClock,
    TemplateProvider, Transport,
};

/// Where the store lives.
#[derive(Args, Debug, Clone)]
pub(crate) struct DbArgs {
    /// `postgres://user@host/db` or a SQLite file path (`sqlite:` prefix optional).
    #[arg(long)]
    pub(crate) db: String,
    /// The Postgres schema holding mia's tables.
    #[arg(long, default_value = "mia")]
    pub(crate) schema: String,
}

impl DbArgs {
    /// The SQLite file, or `None` for a Postgres URL.
    fn sqlite_path(&self) -> Option<&str> {
        if self.db.starts_with("postgres://") || self.db.starts_with("postgresql://") {
            return None;
        }
        Some(
            self.db
                .strip_prefix("sqlite://")
                .or_else(|| self.db.strip_prefix("sqlite:"))
                .unwrap_or(&self.db),
        )
    }

    pub(crate) async fn open(&self) -> Result<Arc<dyn Store>> {
        match self.sqlite_path() {
            None => Ok(Arc::new(
                PostgresStore::connect_with_schema(&self.db, &self.schema).await?,
            )),
            Some(path) if !std::path::Path::new(path).exists() => {
                Err(Error::invalid(format!("no database at {path}")))
            }
            Some(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
        }
    }

    /// Like [`open`](Self::open), but a SQLite file that does not exist yet is created.
    pub(crate) async fn open_or_create(&self) -> Result<Arc<dyn Store>> {
        match self.sqlite_path() {
            Some(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
            None => self.open().await,
        }
    }
}

/// `mia campaign <command>`.
#[derive(Args, Debug)]
pub(crate) struct CampaignArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: CampaignCommand,
}

#[derive(Subcommand, Debug)]
enum CampaignCommand {
    /// Every campaign with its state and progress.
    List,
    /// One campaign: job counts, progress, waits, retries, dead letters, ETA (JSON).
    Status {
        id: String,
        /// The messages a second the workers send at (all of them together, as `mia worker
        /// --rate`): gives the ETA, the open jobs at that rate (a floor: quiet hours and
        /// retries come on top). Without it the ETA is null.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Holds a running campaign; every worker stops within one job.
    Pause {
        id: String,
        #[arg(long, default_value = "paused by an operator")]
        reason: String,
    },
    /// Resumes a paused campaign.
    Resume { id: String },
    /// Stops a campaign for good and cancels its open jobs.
    Abort {
        id: String,
        #[arg(long, default_value = "aborted by an operator")]
        reason: String,
    },
    /// The dead letters of a campaign (JSON lines).
    DeadLetters { id: String },
    /// Puts a dead letter back in the queue (it passes the send policy again).
    Requeue { key: String },
    /// Gives up on a dead letter for good.
    Discard { key: String },
    /// Creates a campaign from a spec file, writes and guards its copy, and sends it to the
    /// contacts who consented, through the chosen transport (`--until-done` waits for it).
    Send(crate::send::SendArgs),
}

pub(crate) fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("not serialisable: {e}")))
}

#[allow(clippy::print_stdout)]
pub(crate) async fn campaign(args: &CampaignArgs) -> Result<()> {
    let store = args.db.open().await?;
    let op = Operator::new(store.clone(), Arc::new(SystemClock));
    match &args.command {
        CampaignCommand::Send(send) => return crate::send::send(store, send).await,
        CampaignCommand::List => {
            for c in store.campaigns().await? {
                let counts = store.job_counts(&c.id).await?;
                println!(
                    "{}  {:<10} sent {:>7} of {:>7}  {}",
                    c.id,
                    c.state.as_str(),
                    counts.sent,
                    counts.total(),
                    c.spec.name
                );
            }
        }
        CampaignCommand::Status { id, rate } => {
            let op = match rate {
                Some(rate) if rate.is_finite() && *rate > 0.0 => op.with_send_rate(*rate),
                Some(rate) => {
                    return Err(Error::invalid(format!(
                        "--rate must be a positive number of messages a second, not {rate}"
                    )));
                }
                None => op,
            };
            println!(
                "{}",
                json(&op.status(&CampaignId::new(id.as_str())).await?)?
            );
        }
        CampaignCommand::Pause { id, reason } => {
            let c = op
                .pause(&CampaignId::new(id.as_str()), reason.as_str())
                .await?;
            println!("{} is {}", c.id, c.state);
        }
        CampaignCommand::Resume { id } => {
            let c = op.resume(&CampaignId::new(id.as_str())).await?;
            println!("{} is {}", c.id, c.state);
        }
        CampaignCommand::Abort { id, reason } => {
            let c = op
                .abort(&CampaignId::new(id.as_str()), reason.as_str())
                .await?;
            println!("{} is {}", c.id, c.state);
        }
        CampaignCommand::DeadLetters { id } => {
            for job in op.dead_letters(&CampaignId::new(id.as_str())).await? {
                println!(
                    "{}",
                    serde_json::to_string(&job).map_err(|e| Error::invalid(e.to_string()))?
                );
            }
        }
        CampaignCommand::Requeue { key } => {
            op.requeue_dead_letter(&IdempotencyKey::new(key.as_str()))
                .await?;
            println!("{key} requeued");
        }
        CampaignCommand::Discard { key } => {
            op.discard_dead_letter(&IdempotencyKey::new(key.as_str()))
                .await?;
            println!("{key} discarded");
        }
    }
    Ok(())
}

/// The transports the CLI can send through.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// The simulated Telegram.
    Sim,
    /// Telegram's Bot API.
    BotApi,
    /// An MTProto account through grammers.
    Mtproto,
}

/// Where sends go.
#[derive(Args, Debug, Clone)]
pub(crate) struct TransportArgs {
    /// `sim` (the simulated Telegram, posts kept in `--journal`), `bot-api` (Telegram's Bot API
    /// with `TELEGRAM_BOT_TOKEN`) or `mtproto` (a signed-in `--session`, with
    /// `MIA_MTPROTO_API_ID` and `MIA_MTPROTO_API_HASH`).
    #[arg(long, value_enum, default_value_t = TransportKind::Sim)]
    transport: TransportKind,
    /// The simulator's journal file (with `--transport sim`).
    #[arg(long, required_if_eq("transport", "sim"))]
    journal: Option<PathBuf>,
    /// The Bot API server (with `--transport bot-api`).
    #[arg(long, default_value = mia::telegram::bot_api::DEFAULT_API_BASE)]
    api_base: String,
    /// The MTProto session file (with `--transport mtproto`), leased to this process.
    #[arg(long, required_if_eq("transport", "mtproto"))]
    session: Option<PathBuf>,
}

impl TransportArgs {
    /// Opens the transport; a refused token or a session that is not signed in fails here,
    /// before any job is claimed.
    pub(crate) async fn open(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Transport>> {
        Ok(match self.transport {
            TransportKind::Sim => {
                let journal = self
                    .journal
                    .as_ref()
                    .ok_or_else(|| Error::invalid("--transport sim needs --journal FILE"))?;
                Arc::new(SimTelegram::with_journal(
                    SimConfig::default(),
                    clock,
                    journal,
                )?)
            }
            TransportKind::BotApi => {
                let config = BotApiConfig::new(BotToken::from_env()?)
                    .with_api_base(self.api_base.as_str())?;
                let transport = BotApiTransport::new(config)?.with_clock(clock);
                transport.me().await?;
                Arc::new(transport)
            }
            TransportKind::Mtproto => {
                use mia::telegram::mtproto::{
                    MtprotoClient, MtprotoConfig, MtprotoTransport, SessionFile,
                };
                let path = self
                    .session
                    .as_ref()
                    .ok_or_else(|| Error::invalid("--transport mtproto needs --session FILE"))?;
                let session = SessionFile::open(path)?;
                let client = MtprotoClient::connect(MtprotoConfig::from_env()?, session).await?;
                if !client.is_authorized() {
                    return Err(Error::Config(format!(
                        "the MTProto session {} is not signed in",
                        path.display()
                    )));
                }
                Arc::new(MtprotoTransport::new(client)?.with_clock(clock))
            }
        })
    }
}

/// `mia worker`: sends the jobs of running campaigns through the guards until none is open,
/// sleeping through quiet hours and rate limits; run as many as you like against one database
/// (with `--redis` they share one limit). Its `--help` text is on `Command::Worker`.
#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Shares one rate limit and FloodWait freeze with every worker using this Redis.
    #[arg(long)]
    redis: Option<String>,
    /// The Redis key prefix of the shared limit (one per sending account).
    #[arg(long, default_value = "mia")]
    redis_prefix: String,
    /// Messages per second for the whole deployment.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    #[command(flatten)]
    transport: TransportArgs,
    /// Domains links in copy may point to.
    #[arg(long = "allow-domain")]
    allow_domains: Vec<String>,
    /// This worker's name in leases.
    #[arg(long)]
    worker_id: Option<String>,
    /// At most this many campaign sends a day from the account, counted in the database so
    /// every worker and every restart share the day's count; the rest wait for the next day.
    #[arg(long, value_name = "N")]
    daily_cap: Option<u32>,
    /// The time zone whose midnight starts a new day for `--daily-cap` (IANA name).
    #[arg(long, default_value = "UTC", value_name = "TZ")]
    daily_cap_tz: String,
    /// Serves Prometheus metrics at `http://ADDR/metrics` while the worker runs, e.g.
    /// `127.0.0.1:9464`. Any address is accepted, but the endpoint has no authentication:
    /// bind a non-loopback address only behind a firewall or an authenticating proxy.
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Keeps running when no job is open, looking for new jobs and inbound events every second
    /// until stopped; for a long-lived worker (and its `--metrics`).
    #[arg(long)]
    watch: bool,
}

/// Installs the Prometheus exporter as the global metrics recorder, serving `/metrics` on
/// `addr`.
#[cfg(feature = "metrics")]
fn serve_metrics(addr: std::net::SocketAddr) -> Result<()> {
    // Installed from a thread without a runtime, the exporter runs on a runtime thread of its
    // own: a scrape is answered even while the worker's thread is busy sending.
    std::thread::spawn(move || {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
    })
    .join()
    .map_err(|_| Error::Config("the metrics exporter panicked while starting".into()))?
    .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
    mia::metrics::describe();
    Ok(())
}

#[allow(clippy::print_stdout)]
pub(crate) async fn worker(args: &WorkerArgs) -> Result<()> {
    // Listened for from the start, so a SIGTERM while the worker connects is not fatal.
    let signals = Signals::listen()?;
    #[cfg(feature = "metrics")]
    if let Some(addr) = args.metrics {
        serve_metrics(addr)?;
    }
    let store = args.db.open().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let telegram = args.transport.open(clock.clone()).await?;
    let limit = mia::Gcra::per_second(args.rate);
    let mut content = ContentGuard::builder();
    for d in &args.allow_domains {
        content = content.allow_domain(d.as_str());
    }
    let builder = Agent::builder(TemplateProvider::new(), telegram)
        .shared_store(store)
        .content_policy(content.build()?)
        .send_policy(SendGuard::builder().build()?)
        .worker_id(
            args.worker_id
                .clone()
                .unwrap_or_else(|| format!("worker-{}", std::process::id())),
        );
    let builder = match args.daily_cap {
        Some(max) => builder.daily_cap(max, &args.daily_cap_tz),
        None => builder,
    };
    let builder = match &args.redis {
        Some(url) => builder.rate_limiter(
            mia::redis::RedisRateLimiter::connect(url, &args.redis_prefix, limit).await?,
        ),
        None => builder.rate_limiter(mia::LocalRateLimiter::new(limit)?),
    };
    let agent = builder.build()?;
    // SIGINT or SIGTERM: the batch under way is finished and its results written, then the
    // worker prints what it did and exits (see `Agent::run_until_idle_or`).
    let mut signal = std::pin::pin!(shutdown(signals));
    let signalled = std::cell::Cell::new(false);
    loop {
        let stats = agent
            .run_until_idle_or(async {
                signal.as_mut().await;
                signalled.set(true);
            })
            .await?;
        if !args.watch || stats != mia::RunStats::default() || signalled.get() {
            println!(
                "{}",
                serde_json::to_string(&stats).map_err(|e| Error::invalid(e.to_string()))?
            );
        }
        if !args.watch || signalled.get() {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = signal.as_mut() => return Ok(()),
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for once created.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind| {
                signal(kind).map_err(|e| Error::Config(format!("cannot listen for signals: {e}")))
            };
            Ok(Self {
                interrupt: listen(SignalKind::interrupt())?,
                terminate: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes at the next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            Some(()) = self.interrupt.recv() => {}
            Some(()) = self.terminate.recv() => {}
            else => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Completes at the first signal; a second one ends the process at once (exit code 130), for
/// a batch that waits long for send slots (a FloodWait) when it must not.
#[allow(clippy::print_stderr)]
async fn shutdown(mut signals: Signals) {
    signals.next().await;
    eprintln!("mia worker: stopping after the batch under way; a second signal stops at once");
    tokio::spawn(async move {
        signals.next().await;
        eprintln!("mia worker: stopped at once, mid-batch; leases return its claimed jobs");
        std::process::exit(130);
    });
}

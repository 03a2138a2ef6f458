//! `mia dry-run`: the whole pipeline on embedded defaults, in virtual time.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::{SignedDuration, Timestamp};
use mia::analytics::{CampaignReport, Collector, HtmlReport};
use mia::experiments::Splitter;
use mia::safety::{ContentGuard, SendGuard};
use mia::store::SqliteStore;
use mia::telegram::{Behaviour, SimConfig, SimTelegram};
use mia::{
    Agent, Audience, CampaignSpec, Clock, Completion, CompletionRequest, ContactId, Error,
    EventKind, EventSink, LlmProvider, Result, RunStats, ScheduleSummary, Store, TemplateProvider,
    Transport, VariantId, VirtualClock,
};
use serde::Serialize;

use crate::DryRunArgs;
use crate::audience;
use crate::output;

/// Who writes the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LlmChoice {
    /// The offline template writer: no network, no key.
    Offline,
    /// Claude through the Anthropic Messages API.
    Claude,
}

/// What the copywriter used.
#[derive(Debug, Default, Serialize)]
pub(crate) struct LlmUsage {
    pub(crate) provider: String,
    pub(crate) calls: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    /// HTTP retries (Claude only).
    pub(crate) retries: u64,
    /// `None` when a model had no price: unknown, never a made-up zero.
    pub(crate) cost_micro_usd: Option<u64>,
}

/// Counts tokens and cost of every completion that passes through, for the report.
struct Metered {
    inner: Arc<dyn LlmProvider>,
    usage: std::sync::Mutex<LlmUsage>,
}

#[async_trait::async_trait]
impl LlmProvider for Metered {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion> {
        let completion = self.inner.complete(request).await?;
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        usage.calls += 1;
        usage.input_tokens += completion.usage.input_tokens;
        usage.output_tokens += completion.usage.output_tokens;
        usage.cost_micro_usd = match (usage.calls, usage.cost_micro_usd, completion.cost_micro_usd)
        {
            (1, _, cost) => cost,
            (_, Some(sum), Some(cost)) => Some(sum + cost),
            _ => None,
        };
        Ok(completion)
    }
}

/// The model `choice` names: the offline writer, or Claude configured from
/// `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL` with `model` if given (the client is returned too,
/// for its retry counts).
pub(crate) fn provider(
    choice: LlmChoice,
    model: Option<&str>,
) -> Result<(Arc<dyn LlmProvider>, Option<mia::claude::ClaudeClient>)> {
    Ok(match choice {
        LlmChoice::Offline => (Arc::new(TemplateProvider::new()), None),
        LlmChoice::Claude => {
            let mut config =
                mia::claude::ClaudeConfigBuilder::from_lookup(|k| std::env::var(k).ok())?;
            if let Some(model) = model {
                config = config.model(model);
            }
            let client = mia::claude::ClaudeClient::new(config.build()?)?;
            (Arc::new(client.clone()), Some(client))
        }
    })
}

fn copywriter(args: &DryRunArgs) -> Result<(Arc<Metered>, Option<mia::claude::ClaudeClient>)> {
    let (inner, claude) = provider(args.llm, args.model.as_deref())?;
    let usage = LlmUsage {
        provider: inner.name().to_owned(),
        ..LlmUsage::default()
    };
    let metered = Arc::new(Metered {
        inner,
        usage: std::sync::Mutex::new(usage),
    });
    Ok((metered, claude))
}

/// Everything `dry-run` reports, also written as JSON.
#[derive(Debug, Serialize)]
pub(crate) struct DryRunReport {
    pub(crate) seed: u64,
    pub(crate) contacts: u32,
    pub(crate) database: String,
    pub(crate) virtual_start: Timestamp,
    pub(crate) last_send: Option<Timestamp>,
    pub(crate) virtual_end: Timestamp,
    pub(crate) virtual_duration_secs: i64,
    pub(crate) warm_up: CampaignReport,
    pub(crate) scheduling: ScheduleSummary,
    pub(crate) run: RunStats,
    pub(crate) rate_limited_by_telegram: u64,
    pub(crate) llm: LlmUsage,
    pub(crate) campaign: CampaignReport,
    /// How the campaign would look to Telegram: blocks, STOPs, retry-afters, spam pauses.
    pub(crate) risk: crate::risk::Risk,
    /// The sending account's health at the end, as the agent saw it.
    pub(crate) account_health: mia::AccountHealth,
}

pub(crate) fn run(args: &DryRunArgs) -> Result<()> {
    // Virtual time comes from a `VirtualClock`, which moves only when the agent waits, so a day
    // of quiet hours passes in an instant and the same seed gives the same run.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the runtime: {e}")))?;
    let started = Instant::now();
    let report = runtime.block_on(simulate(args))?;
    let real = started.elapsed();
    write_json(&args.json, &report)?;
    if let Some(path) = &args.html {
        let page = runtime.block_on(html_page(args, &report))?;
        crate::report::write(path, &page)?;
    }
    output::print(&report, real, &args.json);
    Ok(())
}

/// The main campaign's report as an HTML page, with the same numbers as the JSON.
async fn html_page(args: &DryRunArgs, report: &DryRunReport) -> Result<String> {
    let store = SqliteStore::open(&args.db).await?;
    let converted = EventKind::Converted { value_minor: 0 }.name();
    let conversions =
        mia::EventStore::campaign_events_of(&store, &report.campaign.campaign, converted).await?;
    Ok(HtmlReport::new(report.campaign.clone())
        .with_events(&conversions)
        .render())
}

fn write_json(path: &Path, report: &DryRunReport) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::invalid(format!("report is not serialisable: {e}")))?;
    std::fs::write(path, json)
        .map_err(|e| Error::invalid(format!("cannot write {}: {e}", path.display())))
}

fn fresh_database(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::invalid(format!(
                    "cannot replace {}: {e}",
                    Path::new(&p).display()
                )));
            }
        }
    }
    Ok(())
}

/// Wires the agent: SQLite store, collector, guards, splitter, simulated Telegram.
pub(crate) async fn build_agent(
    llm: Arc<dyn LlmProvider>,
    store: Arc<dyn Store>,
    clock: Arc<VirtualClock>,
    seed: u64,
) -> Result<(Agent, SimTelegram)> {
    let mut sim = SimConfig::seeded(seed);
    // Variant B is truly better, so the A/B test has something to find.
    sim.per_variant
        .insert(VariantId::new("A"), Behaviour::default());
    sim.per_variant.insert(
        VariantId::new("B"),
        Behaviour {
            clicked: 0.16,
            ..Behaviour::default()
        },
    );
    let telegram = SimTelegram::new(sim, clock.clone())?;
    let collector: Arc<dyn EventSink> = Arc::new(Collector::new(store.clone()));
    let transport: Arc<dyn Transport> = Arc::new(telegram.clone());
    let agent = Agent::builder_shared(llm, transport)
        .shared_store(store)
        .shared_event_sink(collector)
        .content_policy(
            ContentGuard::builder()
                .allow_domain("shop.example")
                .build()?,
        )
        .send_policy(SendGuard::builder().build()?)
        .allocator(Splitter::new().with_salt(format!("dry-run-{seed}")))
        .clock(clock)
        .seed(seed)
        .build()?;
    Ok((agent, telegram))
}

async fn simulate(args: &DryRunArgs) -> Result<DryRunReport> {
    fresh_database(&args.db)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&args.db).await?);
    let clock = Arc::new(VirtualClock::starting_at(args.start));
    let (copy, claude) = copywriter(args)?;
    let (agent, telegram) =
        build_agent(copy.clone(), store.clone(), clock.clone(), args.seed).await?;

    let people = audience::generate(args.contacts, args.seed, args.start)?;
    agent.import_contacts(&people.contacts).await?;
    agent.record_consent(&people.consents).await?;

    // A small newsletter went out first, so frequency caps have something to cap.
    let subscribers: Vec<ContactId> = people
        .contacts
        .iter()
        .step_by(25)
        .map(|c| c.id.clone())
        .collect();
    let mut newsletter = CampaignSpec::new(
        "Weekly newsletter",
        "our new arrivals",
        "a first look at the winter collection",
    );
    newsletter.variant_count = 1;
    newsletter.call_to_action_url = Some("https://shop.example/new".into());
    newsletter.audience = Audience::Contacts(subscribers);
    let warm_up = launch(&agent, newsletter).await?;
    agent.run_until_idle().await?;

    let mut spec = CampaignSpec::new(
        "Winter sale",
        "the winter collection",
        "25% off everything until Sunday",
    );
    spec.call_to_action_url = Some("https://shop.example/sale".into());
    let campaign = agent.create_campaign(spec).await?;
    let scheduling = agent.schedule(&campaign.id, None).await?;
    agent.start(&campaign.id).await?;

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(scheduling.queued)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} sending [{bar:40}] {pos}/{len} {msg}")
            .map_err(|e| Error::Config(e.to_string()))?
            .progress_chars("=> "),
    );
    let run_clock = clock.clone();
    let run = agent
        .run_until_idle_with(|stats| {
            bar.set_position(stats.finished());
            bar.set_message(format!(
                "virtual {}",
                run_clock.now().strftime("%a %H:%M UTC")
            ));
        })
        .await?;
    bar.finish_and_clear();

    let jobs = store.jobs(&campaign.id).await?;
    let last_send = jobs
        .iter()
        .filter(|j| j.state == mia::JobState::Sent)
        .map(|j| j.updated_at)
        .max();
    let attribution = SignedDuration::from_hours(i64::from(args.attribution_hours));
    let collect_until = last_send.unwrap_or_else(|| clock.now()) + attribution;
    let mut run = run;
    let after = agent.process_inbound_until(collect_until).await?;
    run.inbound += after.inbound;

    let virtual_end = clock.now();
    let report = CampaignReport::build(store.as_ref(), &campaign.id).await?;
    let risk = crate::risk::assess(&report, &run, telegram.rate_limited_count());
    Ok(DryRunReport {
        seed: args.seed,
        contacts: args.contacts,
        database: args.db.display().to_string(),
        virtual_start: args.start,
        last_send,
        virtual_end,
        virtual_duration_secs: virtual_end.duration_since(args.start).as_secs(),
        warm_up: CampaignReport::build(store.as_ref(), &warm_up).await?,
        scheduling,
        run,
        rate_limited_by_telegram: telegram.rate_limited_count(),
        llm: {
            let mut usage =
                std::mem::take(&mut *copy.usage.lock().unwrap_or_else(|e| e.into_inner()));
            if let Some(client) = &claude {
                usage.retries = client.ledger().total().retries();
            }
            usage
        },
        campaign: report,
        risk,
        account_health: agent.account_health(),
    })
}

async fn launch(agent: &Agent, spec: CampaignSpec) -> Result<mia::CampaignId> {
    let campaign = agent.create_campaign(spec).await?;
    agent.schedule(&campaign.id, None).await?;
    agent.start(&campaign.id).await?;
    Ok(campaign.id)
}

//! The HTTP client: one call is a budget check, attempts with retries inside a deadline,
//! and a ledger entry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde::Serialize;
use tokio::time::Instant;

use crate::budget::{BudgetGuard, Reservation, estimate_input_tokens};
use crate::capabilities::check_request;
use crate::config::ClaudeConfig;
use crate::cost::{Cost, PriceTable};
use crate::error::{ClaudeError, Result};
use crate::ledger::{CallRecord, CostLedger, Scope};
use crate::retry::{exhausted_until, retry_after, should_retry};
use crate::stream::{Finisher, MessageStream};
use crate::wire::{
    InputMessage, MessagesRequest, MessagesResponse, System, TokenCount, Tool, ToolChoice, Usage,
};

/// What happened during one call besides its answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallReport {
    /// HTTP requests made, retries included.
    pub attempts: u32,
    /// The waits before each retry, in order.
    pub retry_waits: Vec<Duration>,
    /// Time spent waiting ahead of a 429 because the rate-limit headers said a window was
    /// spent.
    pub throttled: Duration,
    /// The request id of the last answer.
    pub request_id: Option<String>,
    /// What the call cost.
    pub cost: Option<Cost>,
}

struct Inner {
    http: reqwest::Client,
    config: ClaudeConfig,
    headers: HeaderMap,
    prices: PriceTable,
    ledger: Arc<CostLedger>,
    budget: Option<BudgetGuard>,
    /// Until when the rate-limit headers say a window is spent.
    window_spent_until: Mutex<Option<Timestamp>>,
}

/// A client of the Anthropic Messages API with retries, deadlines, throttling, a cost
/// ledger and an optional budget guard. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct ClaudeClient {
    inner: Arc<Inner>,
    scope: Scope,
}

impl std::fmt::Debug for ClaudeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeClient")
            .field("config", &self.inner.config)
            .field("scope", &self.scope)
            .field("budget", &self.inner.budget.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ClaudeClient`] with a price table, ledger or budget of the host's.
#[derive(Debug)]
pub struct ClaudeClientBuilder {
    config: ClaudeConfig,
    prices: PriceTable,
    ledger: Arc<CostLedger>,
    budget: Option<BudgetGuard>,
}

impl ClaudeClientBuilder {
    /// The price table (default: the built-in one).
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// A ledger to record into (to share one between clients).
    #[must_use]
    pub fn ledger(mut self, ledger: Arc<CostLedger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// A budget guard checked before every call.
    #[must_use]
    pub fn budget(mut self, budget: BudgetGuard) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ClaudeError::Config`] when a header value is unusable (a key with a newline), or
    /// [`ClaudeError::Transport`] when the TLS stack cannot start.
    pub fn build(self) -> Result<ClaudeClient> {
        let c = &self.config;
        let header = |value: &str, what: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| ClaudeError::Config(format!("the {what} is not a valid header value")))
        };
        let mut headers = HeaderMap::new();
        let mut key = header(c.api_key.expose(), "API key")?;
        key.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-api-key"), key);
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            header(&c.anthropic_version, "anthropic-version")?,
        );
        if !c.betas.is_empty() {
            headers.insert(
                HeaderName::from_static("anthropic-beta"),
                header(&c.betas.join(","), "anthropic-beta")?,
            );
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("mia-claude/", env!("CARGO_PKG_VERSION"))),
        );
        let http = reqwest::Client::builder()
            .connect_timeout(c.connect_timeout)
            .read_timeout(c.request_timeout)
            .build()
            .map_err(ClaudeError::Transport)?;
        Ok(ClaudeClient {
            inner: Arc::new(Inner {
                http,
                headers,
                prices: self.prices,
                ledger: self.ledger,
                budget: self.budget,
                window_spent_until: Mutex::new(None),
                config: self.config,
            }),
            scope: Scope::default(),
        })
    }
}

enum Received {
    Json(Bytes),
    Stream(reqwest::Response),
}

enum Attempt {
    Success(Received, HeaderMap),
    Status(u16, HeaderMap, Bytes),
    Transport(reqwest::Error),
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[derive(Serialize)]
struct CountTokensBody<'a> {
    model: &'a str,
    messages: &'a [InputMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a System>,
    #[serde(skip_serializing_if = "<[Tool]>::is_empty")]
    tools: &'a [Tool],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a ToolChoice>,
}

impl ClaudeClient {
    /// A client with the built-in price table, its own ledger and no budget.
    ///
    /// # Errors
    /// As [`ClaudeClientBuilder::build`].
    pub fn new(config: ClaudeConfig) -> Result<Self> {
        Self::builder(config).build()
    }

    /// A builder, to add a price table, a shared ledger or a budget.
    pub fn builder(config: ClaudeConfig) -> ClaudeClientBuilder {
        ClaudeClientBuilder {
            config,
            prices: PriceTable::builtin(),
            ledger: Arc::new(CostLedger::default()),
            budget: None,
        }
    }

    /// A clone whose calls are charged to `scope` (campaign, agent) in the ledger and budget.
    #[must_use]
    pub fn scoped(&self, scope: Scope) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            scope,
        }
    }

    /// The scope calls are charged to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The configuration.
    pub fn config(&self) -> &ClaudeConfig {
        &self.inner.config
    }

    /// The ledger every call is recorded in.
    pub fn ledger(&self) -> &CostLedger {
        &self.inner.ledger
    }

    /// The budget guard, if one is set.
    pub fn budget(&self) -> Option<&BudgetGuard> {
        self.inner.budget.as_ref()
    }

    /// The price table.
    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    /// Sends one request and returns the model's message.
    ///
    /// # Errors
    /// [`ClaudeError::Unsupported`] before any request when the model is known to reject it;
    /// [`ClaudeError::Budget`] or [`ClaudeError::UnknownPrice`] before any request when a
    /// budget refuses; [`ClaudeError::Api`] when the API answers an error that is not retried
    /// or retries run out; [`ClaudeError::RateLimitedUntil`] when the wait asked for exceeds
    /// the cap; [`ClaudeError::Deadline`]; [`ClaudeError::Transport`]; [`ClaudeError::Decode`].
    pub async fn messages(&self, request: &MessagesRequest) -> Result<MessagesResponse> {
        self.messages_with_report(request).await.map(|(m, _)| m)
    }

    /// As [`messages`](Self::messages), with the attempts, waits, request id and cost.
    ///
    /// # Errors
    /// As [`messages`](Self::messages).
    pub async fn messages_with_report(
        &self,
        request: &MessagesRequest,
    ) -> Result<(MessagesResponse, CallReport)> {
        let (request, reservation) = self.prepare(request, false)?;
        let mut report = CallReport::default();
        let result = async {
            let body = encode(&request)?;
            let deadline_at = deadline_from_now(self.inner.config.deadline);
            match self
                .execute("/v1/messages", body, false, deadline_at, &mut report)
                .await?
            {
                Received::Json(bytes) => serde_json::from_slice::<MessagesResponse>(&bytes)
                    .map_err(|source| ClaudeError::Decode {
                        context: "messages response".into(),
                        source,
                    }),
                Received::Stream(_) => Err(ClaudeError::Stream {
                    message: "a stream where JSON was asked for".into(),
                    error_type: None,
                }),
            }
        }
        .await;
        let cost = self.record(
            &request.model,
            &self.scope,
            result.as_ref(),
            &report,
            reservation,
        );
        report.cost = Some(cost);
        result.map(|m| (m, report))
    }

    /// Sends one request as a stream of server-sent events. Retries cover opening the
    /// stream (error statuses before the first byte); a stream that breaks later is an error.
    ///
    /// # Errors
    /// As [`messages`](Self::messages) for opening the stream; the stream itself yields
    /// [`ClaudeError::Stream`] when it is cut or carries an error.
    pub async fn stream(&self, request: &MessagesRequest) -> Result<MessageStream> {
        let (request, reservation) = self.prepare(request, true)?;
        let mut report = CallReport::default();
        let deadline_at = deadline_from_now(self.inner.config.deadline);
        let opened = async {
            let body = encode(&request)?;
            self.execute("/v1/messages", body, true, deadline_at, &mut report)
                .await
        }
        .await;
        let response = match opened {
            Ok(Received::Stream(response)) => response,
            Ok(Received::Json(_)) => {
                let e = ClaudeError::Stream {
                    message: "JSON where a stream was asked for".into(),
                    error_type: None,
                };
                self.record(&request.model, &self.scope, Err(&e), &report, reservation);
                return Err(e);
            }
            Err(e) => {
                self.record(&request.model, &self.scope, Err(&e), &report, reservation);
                return Err(e);
            }
        };
        let client = self.clone();
        let model = request.model.clone();
        let finish_report = report.clone();
        let finisher: Finisher = Box::new(move |outcome| {
            client.record(&model, &client.scope, outcome, &finish_report, reservation);
        });
        Ok(MessageStream::new(
            response.bytes_stream(),
            deadline_at,
            self.inner.config.deadline,
            report.attempts,
            report.request_id,
            Some(finisher),
        ))
    }

    /// Counts the input tokens of a request with `POST /v1/messages/count_tokens` (free,
    /// separately rate-limited).
    ///
    /// # Errors
    /// As [`messages`](Self::messages), without the budget.
    pub async fn count_tokens(&self, request: &MessagesRequest) -> Result<u64> {
        let model = self.model_for(request);
        let body = CountTokensBody {
            model: &model,
            messages: &request.messages,
            system: request.system.as_ref(),
            tools: &request.tools,
            tool_choice: request.tool_choice.as_ref(),
        };
        let body =
            Bytes::from(
                serde_json::to_vec(&body).map_err(|source| ClaudeError::Decode {
                    context: "count_tokens request".into(),
                    source,
                })?,
            );
        let deadline_at = deadline_from_now(self.inner.config.deadline);
        let mut report = CallReport::default();
        match self
            .execute(
                "/v1/messages/count_tokens",
                body,
                false,
                deadline_at,
                &mut report,
            )
            .await?
        {
            Received::Json(bytes) => serde_json::from_slice::<TokenCount>(&bytes)
                .map(|c| c.input_tokens)
                .map_err(|source| ClaudeError::Decode {
                    context: "count_tokens response".into(),
                    source,
                }),
            Received::Stream(_) => Err(ClaudeError::Config("unexpected stream".into())),
        }
    }

    fn model_for(&self, request: &MessagesRequest) -> String {
        if request.model.trim().is_empty() {
            self.inner.config.model.clone()
        } else {
            request.model.clone()
        }
    }

    /// The request as sent (model filled in, stream flag set), and the budget reservation.
    fn prepare(
        &self,
        request: &MessagesRequest,
        stream: bool,
    ) -> Result<(MessagesRequest, Option<Reservation>)> {
        let mut request = request.clone();
        request.model = self.model_for(&request);
        request.stream = stream.then_some(true);
        check_request(&request, &self.inner.config.betas)?;
        let reservation = match &self.inner.budget {
            Some(guard) if guard.applies_to(&self.scope) => {
                let worst = self
                    .inner
                    .prices
                    .worst_case_nano_usd(
                        &request.model,
                        estimate_input_tokens(&request),
                        u64::from(request.max_tokens),
                        Timestamp::now(),
                    )
                    .ok_or_else(|| ClaudeError::UnknownPrice {
                        model: request.model.clone(),
                    })?;
                Some(guard.reserve(&self.scope, worst)?)
            }
            _ => None,
        };
        Ok((request, reservation))
    }

    /// Records a finished call in the ledger and settles its reservation; returns its cost.
    fn record(
        &self,
        model: &str,
        scope: &Scope,
        outcome: std::result::Result<&MessagesResponse, &ClaudeError>,
        report: &CallReport,
        reservation: Option<Reservation>,
    ) -> Cost {
        let now = Timestamp::now();
        let (model, usage, ok) = match outcome {
            Ok(m) => (m.model.as_str(), m.usage.clone(), true),
            Err(_) => (model, Usage::default(), false),
        };
        let cost = self.inner.prices.cost(model, &usage, now, false);
        if let Some(r) = reservation {
            r.settle(cost.nano_usd().unwrap_or(0));
        }
        if ok && matches!(cost, Cost::Unknown { .. }) {
            tracing::warn!(
                model,
                "mia.llm: no price for this model; its cost is unknown"
            );
        }
        // Counts and ids only: no prompt or answer text.
        tracing::debug!(
            model,
            ok,
            attempts = report.attempts,
            request_id = report.request_id.as_deref(),
            input_tokens = usage.prompt_tokens(),
            output_tokens = usage.output_tokens,
            cost_micro_usd = cost.micro_usd(),
            "mia.llm call"
        );
        self.inner.ledger.record(CallRecord {
            at: now,
            model: model.to_owned(),
            scope: scope.clone(),
            usage,
            cost: cost.clone(),
            attempts: report.attempts,
            ok,
            request_id: report.request_id.clone(),
        });
        cost
    }

    /// Waits while the rate-limit headers say a window is spent.
    async fn wait_for_window(&self, deadline_at: Instant, report: &mut CallReport) -> Result<()> {
        if !self.inner.config.throttle {
            return Ok(());
        }
        let until = *self
            .inner
            .window_spent_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(until) = until else { return Ok(()) };
        let now = Timestamp::now();
        let Ok(wait) = Duration::try_from(until.duration_since(now)) else {
            return Ok(()); // the reset is past
        };
        if wait.is_zero() {
            return Ok(());
        }
        if wait > self.inner.config.retry.max_retry_after || Instant::now() + wait > deadline_at {
            return Err(ClaudeError::RateLimitedUntil {
                until,
                status: None,
                request_id: report.request_id.clone(),
                attempts: report.attempts,
            });
        }
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "mia.llm throttled ahead of a 429"
        );
        tokio::time::sleep(wait).await;
        report.throttled += wait;
        Ok(())
    }

    fn note_rate_limits(&self, path: &str, headers: &HeaderMap) {
        // count_tokens has limits of its own; only the Messages limits gate messages.
        if path != "/v1/messages" {
            return;
        }
        let reported = ["requests", "tokens", "input-tokens", "output-tokens"]
            .iter()
            .any(|l| headers.contains_key(format!("anthropic-ratelimit-{l}-remaining").as_str()));
        if reported {
            *self
                .inner
                .window_spent_until
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = exhausted_until(headers);
        }
    }

    async fn attempt(&self, path: &str, body: Bytes, stream: bool) -> Attempt {
        let c = &self.inner.config;
        let mut request = self
            .inner
            .http
            .post(format!("{}{path}", c.base_url))
            .headers(self.inner.headers.clone())
            .header(
                ACCEPT,
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body);
        if !stream {
            request = request.timeout(c.request_timeout);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Transport(e),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if response.status().is_success() && stream {
            return Attempt::Success(Received::Stream(response), headers);
        }
        match response.bytes().await {
            Ok(bytes) if (200..300).contains(&status) => {
                Attempt::Success(Received::Json(bytes), headers)
            }
            Ok(bytes) => Attempt::Status(status, headers, bytes),
            Err(e) => Attempt::Transport(e),
        }
    }

    /// Attempts until success, a final error, or the deadline.
    async fn execute(
        &self,
        path: &str,
        body: Bytes,
        stream: bool,
        deadline_at: Instant,
        report: &mut CallReport,
    ) -> Result<Received> {
        let c = &self.inner.config;
        let policy = &c.retry;
        let mut retry = 0u32;
        loop {
            self.wait_for_window(deadline_at, report).await?;
            report.attempts += 1;
            let attempt =
                tokio::time::timeout_at(deadline_at, self.attempt(path, body.clone(), stream));
            let (error, wait) = match attempt.await {
                Err(_elapsed) => {
                    return Err(ClaudeError::Deadline {
                        deadline: c.deadline,
                        attempts: report.attempts,
                    });
                }
                Ok(Attempt::Success(received, headers)) => {
                    self.note_rate_limits(path, &headers);
                    report.request_id = request_id(&headers);
                    return Ok(received);
                }
                Ok(Attempt::Status(status, headers, bytes)) => {
                    self.note_rate_limits(path, &headers);
                    report.request_id = request_id(&headers);
                    let error = ClaudeError::from_response(status, &bytes, request_id(&headers));
                    tracing::debug!(status, attempt = report.attempts, "mia.llm error answer");
                    if !should_retry(status, &headers) {
                        return Err(error);
                    }
                    let now = Timestamp::now();
                    let wait = match retry_after(&headers, now) {
                        Some(wait) if wait > policy.max_retry_after => {
                            let until = now
                                .checked_add(
                                    jiff::SignedDuration::try_from(wait)
                                        .unwrap_or(jiff::SignedDuration::MAX),
                                )
                                .unwrap_or(Timestamp::MAX);
                            return Err(ClaudeError::RateLimitedUntil {
                                until,
                                status: Some(status),
                                request_id: error.request_id().map(str::to_owned),
                                attempts: report.attempts,
                            });
                        }
                        Some(wait) => wait,
                        None => policy.backoff(retry, rand::random::<f64>()),
                    };
                    (error, wait)
                }
                Ok(Attempt::Transport(e)) => {
                    if !(e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()) {
                        return Err(ClaudeError::Transport(e));
                    }
                    tracing::debug!(attempt = report.attempts, error = %e, "mia.llm transport error");
                    (
                        ClaudeError::Transport(e),
                        policy.backoff(retry, rand::random::<f64>()),
                    )
                }
            };
            if retry >= policy.max_retries {
                return Err(error);
            }
            if Instant::now() + wait >= deadline_at {
                // Waiting cannot end inside the deadline: the last error says more.
                return Err(error);
            }
            tokio::time::sleep(wait).await;
            report.retry_waits.push(wait);
            retry += 1;
        }
    }
}

fn encode(request: &MessagesRequest) -> Result<Bytes> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(|source| ClaudeError::Decode {
            context: "messages request".into(),
            source,
        })
}

/// Now plus `deadline`, or a far-off instant when that overflows (a "no deadline" setting such
/// as `Duration::MAX` must not panic in the host).
fn deadline_from_now(deadline: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(deadline)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod deadline_tests {
    use super::*;

    #[test]
    fn no_deadline_does_not_overflow() {
        let far = deadline_from_now(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(365 * 24 * 3600));
        let near = deadline_from_now(Duration::from_secs(1));
        assert!(near <= Instant::now() + Duration::from_secs(1));
    }
}

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod agent;
mod allocator;
pub mod assist;
mod audit;
mod campaign;
mod clock;
mod consent;
mod contact;
mod error;
mod event;
mod events;
mod ids;
mod journey;
mod llm;
mod memory;
mod message;
pub mod metrics;
mod operator;
mod policy;
mod privacy;
mod ratelimit;
mod recurrence;
pub mod schema;
mod send_window;
mod store;
mod template;
mod transport;

#[cfg(feature = "testing")]
pub mod testing;

pub use agent::{
    APPROVED_BY_REVIEWER_RULE, ChatPost, DAILY_CAP_RULE, Posted, REJECTED_BY_REVIEWER_RULE,
};
pub use agent::{
    AccountHealth, Agent, AgentBuilder, DECIDED_BY_EVENT, DECIDED_BY_TIMEOUT, OUTCOME_UNKNOWN,
    Reply, RetryPolicy, RunStats, ScheduleSummary,
};
pub use allocator::{
    Allocation, Allocator, Assignment, AssignmentRequest, EvenSplit, HOLDOUT_RULE, Reward,
};
pub use assist::{
    Answer, Answered, AssistantTool, InboundScreen, ReplyAssistant, ScreenedText, tool_fn,
};
pub use audit::{
    AuditAction, AuditCheckpoint, AuditDraft, AuditEntry, AuditEvent, AuditHash, AuditTrail,
    StoreAuditTrail, SubjectKey, canonical_json,
};
pub use campaign::{Audience, Campaign, CampaignSpec, CampaignState, Variant, VariantStatus};
pub use clock::{Clock, SimClock, Sleep, SystemClock, VirtualClock};
pub use consent::{
    ConsentRecord, ConsentState, ConsentStatus, Evidence, LawfulBasis, OBJECTION_METHOD, Purpose,
    RESTRICTION_LIFTED_METHOD, RESTRICTION_METHOD, RESTRICTION_PURPOSE, SELF_GIVEN_METHODS,
    WITHDRAWAL_CLOCK_SKEW, consent_state, current_consent, is_reserved_purpose, objected_since,
    restricted_since,
};
pub use contact::{Contact, PeerKind, TelegramPeer, UNKNOWN_TIME_ZONE};
pub use error::{BoxError, Error, Result};
pub use event::{Event, EventKind};
pub use events::{EventSink, StoreSink};
pub use ids::{CampaignId, ContactId, EventId, IdempotencyKey, ReviewId, VariantId};
pub use journey::{
    Journey, JourneyEvent, JourneyPosition, JourneyStep, MAX_JOURNEY_ROUNDS, MAX_JOURNEY_STEPS,
    PlannedStep, StepAction,
};
pub use llm::{
    Completion, CompletionRequest, ContentBlock, LlmProvider, Message, Role, StopReason,
    ToolChoice, ToolSpec, Usage,
};
pub use memory::MemoryStore;
pub use message::{
    EntityKind, FailureReason, FormatError, FormattedText, OutboundMessage, SendOutcome,
    TextEntity, TextFormat,
};
pub use operator::{CampaignStatus, Operator};
pub use policy::{
    ConsentRule, ContentContext, ContentKind, ContentPolicies, ContentPolicy, Decision,
    OBJECTION_RULE, PermissiveSendPolicy, RESTRICTED_RULE, RuleHit, SendContext, SendKind,
    SendPolicies, SendPolicy, Verdict,
};
pub use privacy::{ErasureCounts, Jurisdiction, RequestKind, RequestState, SubjectRequest};
pub use ratelimit::{Gcra, LocalRateLimiter, RateLimiter};
pub use recurrence::{Every, MAX_INTERVAL, MAX_OCCURRENCES, Recurrence, SUPERSEDED_RULE};
pub use send_window::{SEND_WINDOW_RULE, SendWindow, first_open_in_all};
pub use store::{
    AuditStore, CAMPAIGN_ABORTED, CampaignChange, CampaignStore, ConsentStore, ContactStore,
    DeadLetterAction, EventGroup, EventStore, Job, JobCounts, JobGroup, JobState, JobUpdate,
    NewJob, OutboxStore, ReviewItem, ReviewState, ReviewStore, ReviewSubject, SEND_IN_FLIGHT,
    Store, SubjectStore,
};
pub use template::TemplateProvider;
pub use transport::{
    Capabilities, ChatAdmin, ChatKind, InboundEvent, InboundKind, InviteReport, Invitee, NewChat,
    Transport,
};

pub use agent::is_stop_request;

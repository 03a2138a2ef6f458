//! Outbound messages and what a transport says happened to them.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contact::TelegramPeer;
use crate::ids::{CampaignId, ContactId, IdempotencyKey, VariantId};

/// One message on its way to one chat.
///
/// Build one with [`OutboundMessage::new`] and the `with_*` setters, so fields added later do
/// not break the call:
///
/// ```
/// use mia_core::{ContactId, IdempotencyKey, OutboundMessage, TelegramPeer, TextFormat};
/// let m = OutboundMessage::new(
///     IdempotencyKey::new("order-42:shipped"),
///     ContactId::new("anna"),
///     TelegramPeer::user(1001),
///     "Your order <b>#42</b> is on its way.",
/// )
/// .with_format(TextFormat::Html)
/// .with_reply_to(17);
/// assert_eq!(m.visible_text().unwrap(), "Your order #42 is on its way.");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Transports must treat a second send with the same key as the first one (no new post).
    pub key: IdempotencyKey,
    /// The campaign it belongs to, if any (a STOP confirmation has none).
    pub campaign: Option<CampaignId>,
    /// The recipient.
    pub contact: ContactId,
    /// Where to send.
    pub peer: TelegramPeer,
    /// The variant chosen for this recipient.
    pub variant: Option<VariantId>,
    /// The text.
    pub text: String,
    /// Deliver without a notification sound.
    pub silent: bool,
    /// Telegram's id of the message (in the same chat) this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// Deliver at this time instead of now (MTProto `schedule_date`); a time that has come is
    /// now. A transport whose [`Capabilities::scheduled_sends`](crate::Capabilities) is false
    /// (the Bot API) refuses a message scheduled for later rather than send it early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<Timestamp>,
    /// How [`text`](Self::text) is marked up. What the reader sees is
    /// [`visible_text`](Self::visible_text): guard that (and the link targets of
    /// [`FormattedText::urls`]), never the markup. The agent sends its campaign copy, replies
    /// and posts as [`TextFormat::Plain`], exactly the text its content policy checked.
    #[serde(default)]
    pub format: TextFormat,
}

impl OutboundMessage {
    /// A plain-text message to `peer`, outside any campaign, sent now with a notification.
    pub fn new(
        key: IdempotencyKey,
        contact: ContactId,
        peer: TelegramPeer,
        text: impl Into<String>,
    ) -> Self {
        Self {
            key,
            campaign: None,
            contact,
            peer,
            variant: None,
            text: text.into(),
            silent: false,
            reply_to: None,
            send_at: None,
            format: TextFormat::Plain,
        }
    }

    /// Part of this campaign.
    #[must_use]
    pub fn with_campaign(mut self, campaign: CampaignId) -> Self {
        self.campaign = Some(campaign);
        self
    }

    /// With the variant chosen for the recipient.
    #[must_use]
    pub fn with_variant(mut self, variant: VariantId) -> Self {
        self.variant = Some(variant);
        self
    }

    /// Delivered without a notification sound (or with one, for `false`).
    #[must_use]
    pub fn with_silent(mut self, silent: bool) -> Self {
        self.silent = silent;
        self
    }

    /// A reply to Telegram's message `message_id` in the same chat.
    #[must_use]
    pub fn with_reply_to(mut self, message_id: i64) -> Self {
        self.reply_to = Some(message_id);
        self
    }

    /// Delivered at `at` (see [`send_at`](Self::send_at)).
    #[must_use]
    pub fn with_send_at(mut self, at: Timestamp) -> Self {
        self.send_at = Some(at);
        self
    }

    /// The text is marked up in `format`.
    #[must_use]
    pub fn with_format(mut self, format: TextFormat) -> Self {
        self.format = format;
        self
    }

    /// The text as Telegram parses it: what the reader sees, and the formatting entities.
    ///
    /// # Errors
    /// [`FormatError`] for markup Telegram would refuse ("can't parse entities").
    pub fn formatted(&self) -> Result<FormattedText, FormatError> {
        self.format.parse(&self.text)
    }

    /// What the reader sees: the text without its markup.
    ///
    /// # Errors
    /// [`FormatError`] for markup Telegram would refuse.
    pub fn visible_text(&self) -> Result<String, FormatError> {
        Ok(self.formatted()?.text)
    }

    /// Whether the message is to be held until a time later than `now`.
    pub fn is_scheduled_after(&self, now: Timestamp) -> bool {
        self.send_at.is_some_and(|at| at > now)
    }
}

/// Why a transport will never deliver a message to this chat.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum FailureReason {
    /// The user blocked the sender (`USER_IS_BLOCKED`, bot API 403 "blocked by the user").
    Blocked,
    /// The account is deleted or deactivated.
    Deactivated,
    /// The user's privacy settings forbid the message.
    PrivacyRestricted,
    /// The sender may not write in this chat.
    ChatWriteForbidden,
    /// Telegram limited the sending account for spam (`PEER_FLOOD`): the account and the
    /// campaign pause; mia never moves the traffic to another account.
    SpamLimited,
    /// Telegram rejected the message itself (too long, bad entities, ...).
    InvalidMessage(String),
    /// Anything else that will not succeed on retry.
    Other(String),
}

impl FailureReason {
    /// A stable name for reports and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::Blocked => "blocked",
            FailureReason::Deactivated => "deactivated",
            FailureReason::PrivacyRestricted => "privacy_restricted",
            FailureReason::ChatWriteForbidden => "chat_write_forbidden",
            FailureReason::SpamLimited => "spam_limited",
            FailureReason::InvalidMessage(_) => "invalid_message",
            FailureReason::Other(_) => "other",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::InvalidMessage(d) | FailureReason::Other(d) => {
                write!(f, "{}: {d}", self.code())
            }
            _ => f.write_str(self.code()),
        }
    }
}

/// What happened to one send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum SendOutcome {
    /// Telegram accepted the message.
    Sent {
        /// Telegram's message id.
        message_id: i64,
        /// True when the key had been sent before and this is the original message.
        duplicate: bool,
    },
    /// Over a limit: try again after this long (FloodWait, HTTP 429 `retry_after`, slow mode).
    RetryAfter {
        /// How long Telegram asked to wait.
        after: Duration,
        /// Which limit.
        reason: String,
    },
    /// Will never succeed.
    Failed(FailureReason),
}

/// How a message's text is marked up, as Telegram's `parse_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// The text is shown as it is.
    #[default]
    Plain,
    /// Telegram's HTML subset: `<b>`, `<i>`, `<u>`, `<s>`, `<tg-spoiler>`, `<a href>`,
    /// `<code>`, `<pre>`, `<blockquote>`, `<tg-emoji>`; `&lt;`, `&gt;`, `&amp;`, `&quot;` and
    /// numeric entities.
    Html,
    /// Telegram's MarkdownV2: `*bold*`, `_italic_`, `__underline__`, `~strike~`,
    /// `||spoiler||`, `[text](url)`, `` `code` ``, ```` ```pre``` ````, `>quote`; every other
    /// reserved character escaped with `\`.
    MarkdownV2,
}

impl TextFormat {
    /// The Bot API's `parse_mode` for this format (`None` for plain text).
    pub fn parse_mode(self) -> Option<&'static str> {
        match self {
            TextFormat::Plain => None,
            TextFormat::Html => Some("HTML"),
            TextFormat::MarkdownV2 => Some("MarkdownV2"),
        }
    }

    /// Parses `text` as Telegram does: the text the reader sees and its entities.
    ///
    /// # Errors
    /// [`FormatError`] where Telegram answers "can't parse entities": an unsupported or
    /// unclosed tag, a mismatched end tag, an unescaped reserved MarkdownV2 character, an
    /// entity left open.
    pub fn parse(self, text: &str) -> Result<FormattedText, FormatError> {
        match self {
            TextFormat::Plain => Ok(FormattedText {
                text: text.to_owned(),
                entities: Vec::new(),
            }),
            TextFormat::Html => parse_html(text),
            TextFormat::MarkdownV2 => parse_markdown_v2(text),
        }
    }
}

/// A formatted text taken apart: what the reader sees, and how it is formatted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormattedText {
    /// The visible text, markup removed and entities decoded.
    pub text: String,
    /// Formatting over ranges of [`text`](Self::text), in order of their start.
    pub entities: Vec<TextEntity>,
}

impl FormattedText {
    /// The link targets (`<a href>`, `[text](url)`), which the reader does not see but opens:
    /// a content policy checks them as well as the text.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.entities.iter().filter_map(|e| match &e.kind {
            EntityKind::TextLink { url } => Some(url.as_str()),
            _ => None,
        })
    }
}

/// One formatted range. Offsets and lengths count UTF-16 code units, as Telegram's do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextEntity {
    /// The formatting.
    pub kind: EntityKind,
    /// Where it starts, in UTF-16 code units.
    pub offset: usize,
    /// How long it is, in UTF-16 code units.
    pub length: usize,
}

/// The formatting of a [`TextEntity`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EntityKind {
    /// Bold.
    Bold,
    /// Italic.
    Italic,
    /// Underlined.
    Underline,
    /// Struck through.
    Strikethrough,
    /// Hidden until tapped.
    Spoiler,
    /// Monospace, inline.
    Code,
    /// A monospace block.
    Pre {
        /// The programming language, if named.
        language: Option<String>,
    },
    /// A link behind the text.
    TextLink {
        /// Where it leads.
        url: String,
    },
    /// A quotation block.
    Blockquote,
    /// A custom emoji.
    CustomEmoji {
        /// Telegram's id of the emoji.
        id: i64,
    },
}

/// Markup Telegram would refuse, with Telegram's wording ("can't parse entities: ...").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("can't parse entities: {message} at byte offset {offset}")]
pub struct FormatError {
    /// What is wrong.
    pub message: String,
    /// Where, in bytes of the marked-up text.
    pub offset: usize,
}

fn format_error(message: impl Into<String>, offset: usize) -> FormatError {
    FormatError {
        message: message.into(),
        offset,
    }
}

/// The visible text as it is built, with its length in UTF-16 code units.
#[derive(Default)]
struct Visible {
    text: String,
    utf16: usize,
    entities: Vec<TextEntity>,
}

impl Visible {
    fn push(&mut self, c: char) {
        self.text.push(c);
        self.utf16 += c.len_utf16();
    }

    fn close(&mut self, kind: EntityKind, start: usize) {
        if self.utf16 > start {
            self.entities.push(TextEntity {
                kind,
                offset: start,
                length: self.utf16 - start,
            });
        }
    }

    fn finish(mut self) -> FormattedText {
        self.entities.sort_by_key(|e| e.offset);
        FormattedText {
            text: self.text,
            entities: self.entities,
        }
    }
}

/// `&lt;` `&gt;` `&amp;` `&quot;` `&#NN;` `&#xNN;` at the start of `s`: the character and
/// the bytes it took. Anything else is not an entity (Telegram keeps a bare `&`).
fn html_entity(s: &str) -> Option<(char, usize)> {
    // Only the first 11 bytes can hold an entity we know; never scan the rest of the text.
    let end = s.as_bytes().iter().take(11).position(|b| *b == b';')?;
    let name = s.get(1..end)?;
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code).filter(|c| *c != '\0')?
        }
    };
    Some((c, end + 1))
}

fn decode_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if c == '&'
            && let Some((decoded, taken)) = html_entity(rest)
        {
            out.push(decoded);
            rest = rest.get(taken..).unwrap_or("");
            continue;
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    out
}

struct OpenTag {
    name: String,
    kind: Option<EntityKind>,
    start: usize,
}

/// A start tag: its lowercase name, its attributes (values decoded), and its length in bytes
/// after the `<`, up to and including `>`.
type StartTag = (String, Vec<(String, String)>, usize);

/// The start tag whose name begins at `s` (after `<`).
fn start_tag(s: &str, at: usize) -> Result<StartTag, FormatError> {
    let name_len = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(s.len());
    let name = s[..name_len].to_ascii_lowercase();
    if name.is_empty() {
        return Err(format_error("Unsupported start tag \"\"", at));
    }
    let mut attributes = Vec::new();
    let mut i = name_len;
    loop {
        let rest = &s[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        match trimmed.chars().next() {
            None => return Err(format_error("Unclosed start tag", at)),
            Some('>') => return Ok((name, attributes, i + 1)),
            Some(_) => {}
        }
        let attr_len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(trimmed.len());
        if attr_len == 0 {
            return Err(format_error(
                format!("Expected equal sign in declaration of an attribute of the tag \"{name}\""),
                at,
            ));
        }
        let attr = trimmed[..attr_len].to_ascii_lowercase();
        i += attr_len;
        let rest = s[i..].trim_start();
        if !rest.starts_with('=') {
            attributes.push((attr, String::new()));
            continue;
        }
        i = s.len() - rest.len() + 1;
        let rest = s[i..].trim_start();
        i = s.len() - rest.len();
        let (value, taken) = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let Some(end) = rest[1..].find(quote) else {
                    return Err(format_error("Unclosed start tag", at));
                };
                (&rest[1..=end], end + 2)
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .unwrap_or(rest.len());
                (&rest[..end], end)
            }
        };
        attributes.push((attr, decode_html(value)));
        i += taken;
    }
}

fn parse_html(input: &str) -> Result<FormattedText, FormatError> {
    let mut out = Visible::default();
    let mut open: Vec<OpenTag> = Vec::new();
    let mut i = 0;
    while let Some(c) = input[i..].chars().next() {
        if c == '&'
            && let Some((decoded, taken)) = html_entity(&input[i..])
        {
            out.push(decoded);
            i += taken;
            continue;
        }
        if c != '<' {
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let at = i;
        if let Some(rest) = input[i + 1..].strip_prefix('/') {
            let Some(end) = rest.find('>') else {
                return Err(format_error("Unclosed end tag", at));
            };
            let name = rest[..end].trim().to_ascii_lowercase();
            let Some(top) = open.pop() else {
                return Err(format_error(
                    format!("Unexpected end tag \"</{name}>\""),
                    at,
                ));
            };
            if top.name != name {
                return Err(format_error(
                    format!(
                        "Unmatched end tag \"</{name}>\", expected \"</{}>\"",
                        top.name
                    ),
                    at,
                ));
            }
            if let Some(kind) = top.kind {
                out.close(kind, top.start);
            }
            i += end + 3;
            continue;
        }
        let (name, attributes, taken) = start_tag(&input[i + 1..], at)?;
        let attribute = |wanted: &str| {
            attributes
                .iter()
                .find(|(n, _)| n == wanted)
                .map(|(_, v)| v.as_str())
        };
        let kind = match name.as_str() {
            "b" | "strong" => Some(EntityKind::Bold),
            "i" | "em" => Some(EntityKind::Italic),
            "u" | "ins" => Some(EntityKind::Underline),
            "s" | "strike" | "del" => Some(EntityKind::Strikethrough),
            "tg-spoiler" => Some(EntityKind::Spoiler),
            "span" if attribute("class") == Some("tg-spoiler") => Some(EntityKind::Spoiler),
            "span" => {
                return Err(format_error(
                    "Tag \"span\" must have class \"tg-spoiler\"",
                    at,
                ));
            }
            // A link without a target is plain text, as Telegram treats it.
            "a" => {
                attribute("href")
                    .filter(|url| !url.is_empty())
                    .map(|url| EntityKind::TextLink {
                        url: url.to_owned(),
                    })
            }
            "code" => {
                let language = attribute("class")
                    .and_then(|class| class.strip_prefix("language-"))
                    .filter(|l| !l.is_empty());
                match (open.last_mut(), language) {
                    (
                        Some(OpenTag {
                            kind: Some(EntityKind::Pre { language: slot }),
                            ..
                        }),
                        Some(language),
                    ) if slot.is_none() => {
                        *slot = Some(language.to_owned());
                        None
                    }
                    _ => Some(EntityKind::Code),
                }
            }
            "pre" => Some(EntityKind::Pre { language: None }),
            "blockquote" => Some(EntityKind::Blockquote),
            "tg-emoji" => {
                let id = attribute("emoji-id")
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| format_error("Custom emoji identifier must be non-empty", at))?;
                Some(EntityKind::CustomEmoji { id })
            }
            _ => {
                return Err(format_error(
                    format!("Unsupported start tag \"{name}\""),
                    at,
                ));
            }
        };
        open.push(OpenTag {
            name,
            kind,
            start: out.utf16,
        });
        i += 1 + taken;
    }
    if let Some(top) = open.last() {
        return Err(format_error(
            format!(
                "Can't find end tag corresponding to start tag \"{}\"",
                top.name
            ),
            input.len(),
        ));
    }
    Ok(out.finish())
}

const MARKDOWN_RESERVED: &str = "_*[]()~`>#+-=|{}.!";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mark {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    Code,
    Pre,
    Link,
    Emoji,
}

struct OpenMark {
    mark: Mark,
    start: usize,
    at: usize,
    language: Option<String>,
}

/// `(url)` right after the `]` of a link: the URL (`\)` and `\\` unescaped) and the bytes taken.
fn markdown_url(s: &str, at: usize) -> Result<(String, usize), FormatError> {
    let mut url = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((j, c)) = chars.next() {
        match c {
            ')' => return Ok((url, j + 1)),
            '\\' => match chars.next() {
                Some((_, escaped)) => url.push(escaped),
                None => break,
            },
            _ => url.push(c),
        }
    }
    Err(format_error("Can't find end of a URL", at))
}

fn parse_markdown_v2(input: &str) -> Result<FormattedText, FormatError> {
    let mut out = Visible::default();
    let mut open: Vec<OpenMark> = Vec::new();
    let mut quote: Option<usize> = None;
    let mut i = 0;
    while let Some(c) = input[i..].chars().next() {
        let next = input[i + c.len_utf8()..].chars().next();
        let top = open.last().map(|m| m.mark);
        let in_code = matches!(top, Some(Mark::Code | Mark::Pre));
        let line_start = i == 0 || input[..i].ends_with('\n');
        if c == '\\' && next.is_some_and(|n| (1..=126).contains(&u32::from(n))) {
            if let Some(n) = next {
                out.push(n);
                i += 1 + n.len_utf8();
            }
            continue;
        }
        if c == '\n' {
            if let Some(start) = quote
                && !input[i + 1..].starts_with('>')
            {
                out.close(EntityKind::Blockquote, start);
                quote = None;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '>' && line_start && !in_code {
            quote.get_or_insert(out.utf16);
            i += 1;
            continue;
        }
        if !MARKDOWN_RESERVED.contains(c) || (in_code && c != '`') {
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let ends = match top {
            Some(Mark::Bold) => c == '*',
            Some(Mark::Italic) => c == '_' && next != Some('_'),
            Some(Mark::Underline) => c == '_' && next == Some('_'),
            Some(Mark::Strikethrough) => c == '~',
            Some(Mark::Spoiler) => c == '|' && next == Some('|'),
            Some(Mark::Code) => c == '`',
            Some(Mark::Pre) => input[i..].starts_with("```"),
            Some(Mark::Link | Mark::Emoji) => c == ']',
            None => false,
        };
        let at = i;
        if in_code && !ends {
            return Err(format_error(
                "Character '`' inside code must be escaped with the preceding '\\'",
                at,
            ));
        }
        if ends {
            let Some(m) = open.pop() else { break };
            i += match m.mark {
                Mark::Underline | Mark::Spoiler => 2,
                Mark::Pre => 3,
                _ => 1,
            };
            let kind = match m.mark {
                Mark::Bold => EntityKind::Bold,
                Mark::Italic => EntityKind::Italic,
                Mark::Underline => EntityKind::Underline,
                Mark::Strikethrough => EntityKind::Strikethrough,
                Mark::Spoiler => EntityKind::Spoiler,
                Mark::Code => EntityKind::Code,
                Mark::Pre => EntityKind::Pre {
                    language: m.language,
                },
                Mark::Link | Mark::Emoji => {
                    if !input[i..].starts_with('(') {
                        if m.mark == Mark::Emoji {
                            return Err(format_error(
                                "Custom emoji entity must contain a tg://emoji URL",
                                at,
                            ));
                        }
                        // `[text]` without a target: the text, without a link.
                        continue;
                    }
                    let (url, taken) = markdown_url(&input[i..], i)?;
                    i += taken;
                    if m.mark == Mark::Emoji {
                        let id = url
                            .strip_prefix("tg://emoji?id=")
                            .and_then(|id| id.parse().ok())
                            .ok_or_else(|| {
                                format_error("Custom emoji URL must have an emoji identifier", at)
                            })?;
                        EntityKind::CustomEmoji { id }
                    } else if url.is_empty() {
                        continue;
                    } else {
                        EntityKind::TextLink { url }
                    }
                }
            };
            out.close(kind, m.start);
            continue;
        }
        let (mark, taken) = match c {
            '*' => (Mark::Bold, 1),
            '_' if next == Some('_') => (Mark::Underline, 2),
            '_' => (Mark::Italic, 1),
            '~' => (Mark::Strikethrough, 1),
            '|' if next == Some('|') => (Mark::Spoiler, 2),
            '[' => (Mark::Link, 1),
            '!' if next == Some('[') => (Mark::Emoji, 2),
            '`' if input[i..].starts_with("```") => (Mark::Pre, 3),
            '`' => (Mark::Code, 1),
            _ => {
                return Err(format_error(
                    format!(
                        "Character '{c}' is reserved and must be escaped with the preceding '\\'"
                    ),
                    at,
                ));
            }
        };
        i += taken;
        let mut language = None;
        if mark == Mark::Pre {
            // ```language on the first line; the newline after it is not part of the text.
            let line_end = input[i..].find('\n');
            if let Some(end) = line_end {
                let first = &input[i..i + end];
                if !first.is_empty() && !first.contains(['`', ' ']) {
                    language = Some(first.to_owned());
                    i += end + 1;
                } else if first.is_empty() {
                    i += 1;
                }
            }
        }
        open.push(OpenMark {
            mark,
            start: out.utf16,
            at,
            language,
        });
    }
    if let Some(m) = open.last() {
        return Err(format_error(
            format!("Can't find end of {:?} entity", m.mark),
            m.at,
        ));
    }
    if let Some(start) = quote {
        out.close(EntityKind::Blockquote, start);
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entity(kind: EntityKind, offset: usize, length: usize) -> TextEntity {
        TextEntity {
            kind,
            offset,
            length,
        }
    }

    #[test]
    fn html_is_stripped_to_what_the_reader_sees() {
        let f = TextFormat::Html
            .parse("<b>Sale</b> &amp; <i>more</i>: <a href=\"https://shop.example/?a=1&amp;b=2\">shop</a> &lt;3 &#128512; AT&T")
            .unwrap();
        assert_eq!(f.text, "Sale & more: shop <3 😀 AT&T");
        assert_eq!(
            f.entities,
            vec![
                entity(EntityKind::Bold, 0, 4),
                entity(EntityKind::Italic, 7, 4),
                entity(
                    EntityKind::TextLink {
                        url: "https://shop.example/?a=1&b=2".into()
                    },
                    13,
                    4
                ),
            ]
        );
        assert_eq!(
            f.urls().collect::<Vec<_>>(),
            ["https://shop.example/?a=1&b=2"]
        );
    }

    #[test]
    fn html_offsets_count_utf16_and_nest() {
        let f = TextFormat::Html
            .parse("😀 <b>x<u>y</u></b><pre><code class=\"language-rust\">fn</code></pre><tg-spoiler>s</tg-spoiler><span class=\"tg-spoiler\">t</span><tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>")
            .unwrap();
        assert_eq!(f.text, "😀 xyfnst👍");
        assert_eq!(
            f.entities,
            vec![
                entity(EntityKind::Bold, 3, 2),
                entity(EntityKind::Underline, 4, 1),
                entity(
                    EntityKind::Pre {
                        language: Some("rust".into())
                    },
                    5,
                    2
                ),
                entity(EntityKind::Spoiler, 7, 1),
                entity(EntityKind::Spoiler, 8, 1),
                entity(
                    EntityKind::CustomEmoji {
                        id: 5_368_324_170_671_202_286
                    },
                    9,
                    2
                ),
            ]
        );
    }

    #[test]
    fn bad_html_is_refused_as_telegram_does() {
        for (bad, says) in [
            ("<x>hi</x>", "Unsupported start tag \"x\""),
            (
                "<b>hi",
                "Can't find end tag corresponding to start tag \"b\"",
            ),
            ("<b>hi</i>", "Unmatched end tag \"</i>\", expected \"</b>\""),
            ("hi</b>", "Unexpected end tag"),
            ("1 < 2", "Unsupported start tag \"\""),
            ("<b", "Unclosed start tag"),
            ("<span>x</span>", "must have class"),
            ("<br>", "Unsupported start tag \"br\""),
        ] {
            let err = TextFormat::Html.parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("can't parse entities: "),
                "{err}"
            );
            assert!(err.message.contains(says), "{bad}: {err}");
        }
        let err = TextFormat::Html.parse("ok <x>").unwrap_err();
        assert_eq!(err.offset, 3);
    }

    #[test]
    fn markdown_v2_is_stripped_to_what_the_reader_sees() {
        let f = TextFormat::MarkdownV2
            .parse("*bold* _it_ __under__ ~s~ ||sp|| [shop](https://shop.example/a\\)b) `c\\`d` 20\\% off\\!")
            .unwrap();
        assert_eq!(f.text, "bold it under s sp shop c`d 20% off!");
        assert_eq!(
            f.entities,
            vec![
                entity(EntityKind::Bold, 0, 4),
                entity(EntityKind::Italic, 5, 2),
                entity(EntityKind::Underline, 8, 5),
                entity(EntityKind::Strikethrough, 14, 1),
                entity(EntityKind::Spoiler, 16, 2),
                entity(
                    EntityKind::TextLink {
                        url: "https://shop.example/a)b".into()
                    },
                    19,
                    4
                ),
                entity(EntityKind::Code, 24, 3),
            ]
        );
        let f = TextFormat::MarkdownV2
            .parse(">quoted\n>more\nafter ```rust\nlet x = 1;```")
            .unwrap();
        assert_eq!(f.text, "quoted\nmore\nafter let x = 1;");
        assert_eq!(
            f.entities,
            vec![
                entity(EntityKind::Blockquote, 0, 11),
                entity(
                    EntityKind::Pre {
                        language: Some("rust".into())
                    },
                    18,
                    10
                ),
            ]
        );
    }

    #[test]
    fn bad_markdown_v2_is_refused_as_telegram_does() {
        for (bad, says) in [
            ("20% off.", "Character '.' is reserved"),
            ("*bold", "Can't find end of Bold entity"),
            ("[shop](https://x", "Can't find end of a URL"),
            ("a - b", "Character '-' is reserved"),
            ("x ] y", "Character ']' is reserved"),
        ] {
            let err = TextFormat::MarkdownV2.parse(bad).unwrap_err();
            assert!(err.message.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn plain_text_is_shown_as_it_is() {
        let m = OutboundMessage::new(
            IdempotencyKey::new("k"),
            ContactId::new("c"),
            TelegramPeer::user(1),
            "<b>not bold</b> *nor this*.",
        );
        assert_eq!(m.visible_text().unwrap(), "<b>not bold</b> *nor this*.");
        assert!(m.formatted().unwrap().entities.is_empty());
        assert_eq!(TextFormat::Plain.parse_mode(), None);
        assert_eq!(TextFormat::Html.parse_mode(), Some("HTML"));
    }

    #[test]
    fn messages_from_before_formatting_still_parse() {
        let json = r#"{"key":"k","campaign":null,"contact":"c","peer":{"kind":"user","id":1},"variant":null,"text":"hi","silent":false}"#;
        let m: OutboundMessage = serde_json::from_str(json).unwrap();
        assert_eq!(m.format, TextFormat::Plain);
        assert_eq!(m.reply_to, None);
        assert_eq!(m.send_at, None);
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let later = m
            .clone()
            .with_send_at(now + jiff::SignedDuration::from_secs(60));
        assert!(later.is_scheduled_after(now));
        assert!(!later.is_scheduled_after(now + jiff::SignedDuration::from_secs(60)));
        assert!(!m.is_scheduled_after(now));
    }
}

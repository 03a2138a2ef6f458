//! What a person's text means: a bot command or a message. Shared by every transport, so
//! `/start payload`, `/STOP@mybot` and plain replies read the same everywhere.

use mia_core::InboundKind;

/// `/start spring_sale` is the command `start` with the payload `spring_sale`; `/STOP@mia_bot`
/// is `stop` (names are lower-cased, a `@bot` suffix dropped); a slash not followed by a letter
/// or digit (`/ is a slash`) and everything else is text, quoting `reply_to` if it replies.
pub fn inbound_kind(text: &str, reply_to: Option<i64>) -> InboundKind {
    if let Some(command) = text.strip_prefix('/')
        && command
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        let (head, payload) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        let name = head.split('@').next().unwrap_or(head).to_lowercase();
        return InboundKind::Command {
            name,
            payload: payload.trim().to_owned(),
        };
    }
    InboundKind::Text {
        text: text.to_owned(),
        reply_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_payloads_suffixes_and_plain_text() {
        assert_eq!(
            inbound_kind("/start  spring_sale ", None),
            InboundKind::Command {
                name: "start".into(),
                payload: "spring_sale".into()
            }
        );
        assert_eq!(
            inbound_kind("/STOP@mia_bot", Some(3)),
            InboundKind::Command {
                name: "stop".into(),
                payload: String::new()
            }
        );
        assert_eq!(
            inbound_kind("/ is a slash", Some(3)),
            InboundKind::Text {
                text: "/ is a slash".into(),
                reply_to: Some(3)
            }
        );
    }
}

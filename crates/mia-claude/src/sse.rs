//! Server-sent events framing over a byte stream, after the WHATWG `text/event-stream`
//! rules: lines end with `\n`, `\r\n` or `\r`; a blank line ends an event; `data:` lines
//! join with `\n`; lines opening with `:` are comments; one space after the colon is dropped.
//!
//! Bytes are buffered until a line is complete and only then decoded as UTF-8, so a chunk
//! boundary may fall anywhere: inside a line ending, a field name, or a multi-byte character.

/// One event of a `text/event-stream`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`"message"` when the event named none).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
    /// The `retry:` field, in milliseconds, if any.
    pub retry: Option<u64>,
}

/// Turns chunks of bytes into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the line not yet complete.
    line: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` opening the next one belongs to it.
    after_cr: bool,
    /// The byte-order mark was checked (only the first bytes of a stream may carry it).
    bom_checked: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk and appends the events it completes to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) {
        if !self.bom_checked {
            // Wait for three bytes before deciding: the mark itself may be split.
            let mut head = std::mem::take(&mut self.line);
            head.extend_from_slice(chunk);
            if head.len() < 3 && b"\xEF\xBB\xBF".starts_with(&head) {
                self.line = head;
                return;
            }
            self.bom_checked = true;
            let start = if head.starts_with(b"\xEF\xBB\xBF") {
                3
            } else {
                0
            };
            return self.feed_checked(&head[start..], out);
        }
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        self.feed_checked(chunk, out);
    }

    fn feed_checked(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) {
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, rest) = chunk.split_at(pos);
            let ending = rest[0];
            chunk = &rest[1..];
            if ending == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
                // Keep the allocation for the next partial line.
                self.line = line;
                self.line.clear();
            }
        }
        self.line.extend_from_slice(chunk);
    }

    /// Ends the stream. A final event without its blank line is dropped, as the standard
    /// says; the caller learns of a cut stream from the events it did not get.
    pub fn finish(&mut self) {
        self.line.clear();
        self.reset_event();
    }

    /// Bytes buffered in a line not yet complete.
    pub fn pending_bytes(&self) -> usize {
        self.line.len()
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // a comment
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event = value.into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            b"retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if !self.has_data {
            self.reset_event();
            return;
        }
        let event = if self.event.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event)
        };
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
            retry: self.retry,
        });
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_chunks(input: &[u8], size: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in input.chunks(size.max(1)) {
            d.feed(chunk, &mut out);
        }
        d.finish();
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            ..SseEvent::default()
        }
    }

    #[test]
    fn every_line_ending_and_every_split_gives_the_same_events() {
        let text = "event: a\ndata: héllo ✓\n\n: comment\nevent: b\ndata: one\ndata:two\n\ndata: plain\n\n";
        let want = vec![
            ev("a", "héllo ✓"),
            ev("b", "one\ntwo"),
            ev("message", "plain"),
        ];
        for ending in ["\n", "\r\n", "\r"] {
            let input = text.replace('\n', ending);
            for size in 1..=input.len() {
                assert_eq!(
                    decode_in_chunks(input.as_bytes(), size),
                    want,
                    "ending {ending:?}, chunks of {size}"
                );
            }
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped_even_when_split() {
        let input = b"\xEF\xBB\xBFdata: x\n\n";
        for size in 1..=input.len() {
            assert_eq!(decode_in_chunks(input, size), vec![ev("message", "x")]);
        }
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_dispatched() {
        assert!(decode_in_chunks(b"event: message_stop\ndata: {}", 4).is_empty());
        assert!(
            decode_in_chunks(b"event: x\n\n", 4).is_empty(),
            "no data, no event"
        );
    }

    #[test]
    fn id_retry_and_fields_without_colon() {
        let out = decode_in_chunks(b"id: 7\nretry: 1500\ndata\ndata: b\n\n", 3);
        assert_eq!(
            out,
            vec![SseEvent {
                event: "message".into(),
                data: "\nb".into(),
                id: Some("7".into()),
                retry: Some(1500)
            }]
        );
    }
}

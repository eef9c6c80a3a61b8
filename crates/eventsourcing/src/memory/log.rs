//! The memory store's global log: events in position order, in fixed-size segments.
//!
//! One growing `Vec` would copy the whole log at every doubling and ask the allocator for
//! ever larger blocks (fresh, zeroed pages from the kernel each time). Segments of
//! [`SEGMENT`] events are allocated once each, never move, and come from the allocator's
//! reusable heap. An event keeps its stream's name as a shared `Arc<str>` (one allocation
//! per stream, not per event); reads build the public [`RecordedEvent`] from it.

use std::time::SystemTime;

use crate::event::{EventData, EventId, Metadata, Position, RecordedEvent};

/// A stream's name, shared by the stream's entry and its stored events.
pub(super) type StreamName = std::sync::Arc<str>;

/// Events per segment: a segment stays below 128 KiB (glibc's initial threshold for
/// serving an allocation with its own `mmap`).
const SEGMENT: usize = 512;

/// One stored event: [`RecordedEvent`] without its position (the log's index gives it).
#[derive(Debug)]
pub(super) struct StoredEvent {
    pub(super) id: EventId,
    pub(super) stream: StreamName,
    pub(super) version: u64,
    event_type: String,
    schema_version: u32,
    payload: Vec<u8>,
    metadata: Metadata,
    recorded_at: SystemTime,
}

impl StoredEvent {
    /// `event`, stored as version `version` of `stream`.
    pub(super) fn new(
        event: EventData,
        stream: StreamName,
        version: u64,
        recorded_at: SystemTime,
    ) -> StoredEvent {
        StoredEvent {
            id: event.id,
            stream,
            version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: event.payload,
            metadata: event.metadata,
            recorded_at,
        }
    }

    /// The public form, at `position`.
    fn recorded(&self, position: Position) -> RecordedEvent {
        RecordedEvent {
            id: self.id,
            stream_id: String::from(&*self.stream),
            version: self.version,
            position,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            payload: self.payload.clone(),
            metadata: self.metadata.clone(),
            recorded_at: self.recorded_at,
        }
    }
}

/// The log: position `p` is event `p - 1`.
#[derive(Debug, Default)]
pub(super) struct Log {
    segments: Vec<Vec<StoredEvent>>,
    len: usize,
}

impl Log {
    /// How many events it holds (the head position).
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends `event` at position `len() + 1`.
    pub(super) fn push(&mut self, event: StoredEvent) -> Position {
        if self.len % SEGMENT == 0 {
            self.segments.push(Vec::with_capacity(SEGMENT));
        }
        let segment = self.segments.last_mut().expect("a segment with room");
        segment.push(event);
        self.len += 1;
        Position(self.len as u64)
    }

    /// The event at `position` (which must be stored).
    pub(super) fn get(&self, position: Position) -> &StoredEvent {
        let index = position.0 as usize - 1;
        &self.segments[index / SEGMENT][index % SEGMENT]
    }

    /// The event at `position` in its public form.
    pub(super) fn recorded(&self, position: Position) -> RecordedEvent {
        self.get(position).recorded(position)
    }

    /// The events at positions `after + 1 ..= after + max`, as far as stored.
    pub(super) fn read_after(&self, after: usize, max: usize) -> Vec<RecordedEvent> {
        let start = after.min(self.len);
        let end = start.saturating_add(max).min(self.len);
        let mut events = Vec::with_capacity(end - start);
        let mut index = start;
        while index < end {
            let segment = &self.segments[index / SEGMENT];
            let from = index % SEGMENT;
            let to = (from + (end - index)).min(segment.len());
            for (offset, event) in segment[from..to].iter().enumerate() {
                events.push(event.recorded(Position((index + offset) as u64 + 1)));
            }
            index += to - from;
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(events: usize) -> Log {
        let stream = StreamName::from("s");
        let mut log = Log::default();
        for version in 1..=events as u64 {
            let event = EventData::new("E", version.to_le_bytes().to_vec());
            let position = log.push(StoredEvent::new(
                event,
                StreamName::clone(&stream),
                version,
                SystemTime::UNIX_EPOCH,
            ));
            assert_eq!(position, Position(version));
        }
        log
    }

    #[test]
    fn reads_across_segment_boundaries() {
        let total = SEGMENT * 3 + 7;
        let log = log_of(total);
        assert_eq!(log.len(), total);
        for (after, max) in [
            (0, total),
            (SEGMENT - 1, 2),
            (SEGMENT - 3, SEGMENT * 2),
            (SEGMENT * 3, 100),
            (total, 10),
            (total + 5, 10),
            (5, 0),
            (3, usize::MAX),
        ] {
            let read = log.read_after(after, max);
            let expected: Vec<u64> = (after.min(total) as u64 + 1..=total as u64)
                .take(max)
                .collect();
            let positions: Vec<u64> = read.iter().map(|event| event.position.0).collect();
            assert_eq!(positions, expected, "after {after}, max {max}");
            for event in &read {
                assert_eq!(event.version, event.position.0);
                assert_eq!(event.payload, event.version.to_le_bytes());
                assert_eq!(log.recorded(event.position), *event);
            }
        }
    }
}

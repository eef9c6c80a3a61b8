//! The two-stacks sliding aggregation behind sliding windows: the panes of the current
//! window in a queue whose aggregate costs amortised O(1) merges per pane pushed or
//! evicted and one merge per query, however many panes a window spans.
//!
//! The front stack holds suffix aggregates (its top, the oldest pane, aggregates the
//! whole front); the back holds the newest panes and their running aggregate. Evicting
//! from an empty front flips the back into suffix aggregates.

use super::Timestamp;

/// A FIFO of `(pane start, accumulator)` with an aggregate of its contents.
#[derive(Debug)]
pub(crate) struct TwoStacks<Acc> {
    /// `(pane start, aggregate of this pane and every newer pane in the front)`, oldest
    /// last.
    front: Vec<(Timestamp, Acc)>,
    /// `(pane start, pane accumulator)`, newest last.
    back: Vec<(Timestamp, Acc)>,
    /// The aggregate of `back`.
    back_total: Option<Acc>,
}

impl<Acc: Clone> TwoStacks<Acc> {
    pub(crate) fn new() -> Self {
        Self {
            front: Vec::new(),
            back: Vec::new(),
            back_total: None,
        }
    }

    /// Empties the queue.
    pub(crate) fn clear(&mut self) {
        self.front.clear();
        self.back.clear();
        self.back_total = None;
    }

    /// Appends the newest pane (`start` above every pane already in).
    pub(crate) fn push(&mut self, start: Timestamp, acc: Acc, merge: impl Fn(&mut Acc, &Acc)) {
        match &mut self.back_total {
            Some(total) => merge(total, &acc),
            None => self.back_total = Some(acc.clone()),
        }
        self.back.push((start, acc));
    }

    /// Drops every pane that starts before `start`.
    pub(crate) fn evict_before(&mut self, start: Timestamp, merge: impl Fn(&mut Acc, &Acc)) {
        loop {
            if self.front.is_empty() {
                match self.back.first() {
                    Some(&(oldest, _)) if oldest < start => self.flip(&merge),
                    _ => return,
                }
            }
            match self.front.last() {
                Some(&(oldest, _)) if oldest < start => {
                    self.front.pop();
                }
                _ => return,
            }
        }
    }

    /// Moves the back into the (empty) front as suffix aggregates.
    fn flip(&mut self, merge: &impl Fn(&mut Acc, &Acc)) {
        for (start, mut acc) in self.back.drain(..).rev() {
            if let Some((_, newer)) = self.front.last() {
                merge(&mut acc, newer);
            }
            self.front.push((start, acc));
        }
        self.back_total = None;
    }

    /// `finish` of the aggregate of every pane in the queue (oldest first), or `None` if
    /// it is empty. At most one clone and one merge.
    pub(crate) fn query<R>(
        &self,
        merge: impl Fn(&mut Acc, &Acc),
        finish: impl FnOnce(&Acc) -> R,
    ) -> Option<R> {
        match (self.front.last(), &self.back_total) {
            (Some((_, front)), Some(back)) => {
                let mut total = front.clone();
                merge(&mut total, back);
                Some(finish(&total))
            }
            (Some((_, front)), None) => Some(finish(front)),
            (None, Some(back)) => Some(finish(back)),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::TwoStacks;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random pushes, evictions and queries agree with concatenating a plain queue
        /// (concatenation is associative but not commutative, so order is checked too).
        #[test]
        fn matches_naive_merge(ops in proptest::collection::vec((0u8..3, 0i64..4), 0..200)) {
            let concat = |into: &mut Vec<i64>, other: &Vec<i64>| into.extend_from_slice(other);
            let mut stacks = TwoStacks::new();
            let mut naive: VecDeque<(i64, Vec<i64>)> = VecDeque::new();
            let mut next = 0i64;
            for (op, arg) in ops {
                match op {
                    0 => {
                        next += 1 + arg;
                        stacks.push(next, vec![next], concat);
                        naive.push_back((next, vec![next]));
                    }
                    1 => {
                        let cut = naive.front().map_or(0, |front| front.0) + arg;
                        stacks.evict_before(cut, concat);
                        naive.retain(|(start, _)| *start >= cut);
                    }
                    _ => {
                        let expected = (!naive.is_empty())
                            .then(|| naive.iter().flat_map(|(_, acc)| acc.clone()).collect::<Vec<_>>());
                        prop_assert_eq!(stacks.query(concat, |acc| acc.clone()), expected);
                    }
                }
            }
            stacks.clear();
            prop_assert_eq!(stacks.query(concat, |acc| acc.clone()), None);
        }
    }
}

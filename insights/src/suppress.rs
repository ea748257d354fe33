//! Small-cell suppression, after the CMS cell-size policy: no count of 1 to 10 (members,
//! encounters, member-months) is published, and no such count may be derivable from what is.
//!
//! Primary suppression hides every count from 1 to 10 (0 is shown: it names nobody).
//! Complementary suppression then looks at every [`Relation`] the published numbers obey (a
//! total and the parts it adds up to: a row's columns, a column's rows, a population and its
//! filter splits): a relation with exactly one hidden cell would give that cell away by
//! subtraction, so the smallest non-zero visible cell of it is hidden too, and so on until no
//! relation has exactly one hidden cell. A derived value (a rate) is hidden when any count it is
//! derived from is.

use std::collections::VecDeque;

/// The largest count that is suppressed; 1..=10 is never shown.
pub const MAX_SUPPRESSED: i64 = 10;

/// Whether a count may not be shown by itself.
pub fn is_small(count: i64) -> bool {
    (1..=MAX_SUPPRESSED).contains(&count)
}

/// `total` = the sum of `parts`: cells are indexes into the values given to [`suppress`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub total: usize,
    pub parts: Vec<usize>,
}

impl Relation {
    fn cells(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.total).chain(self.parts.iter().copied())
    }
}

/// Which cells to hide. `counts[i]` says whether cell `i` is a count under the 1-10 rule
/// (others, e.g. exposure amounts, are hidden only through the relations they are in, and then
/// by their caller); every relation must name cells of `values`.
///
/// Deterministic: the same values and relations (in the same order) always hide the same cells,
/// so the numbers of one population are suppressed alike whichever split a reader asks for.
pub fn suppress(values: &[i64], counts: &[bool], relations: &[Relation]) -> Vec<bool> {
    let mut hidden: Vec<bool> = values
        .iter()
        .zip(counts)
        .map(|(v, c)| *c && is_small(*v))
        .collect();
    hidden.resize(values.len(), false);
    let mut of_cell: Vec<Vec<usize>> = vec![Vec::new(); values.len()];
    let mut hidden_in: Vec<usize> = Vec::with_capacity(relations.len());
    for (r, rel) in relations.iter().enumerate() {
        let mut n = 0;
        for c in rel.cells() {
            of_cell[c].push(r);
            n += usize::from(hidden[c]);
        }
        hidden_in.push(n);
    }
    let mut todo: VecDeque<usize> = (0..relations.len())
        .filter(|r| hidden_in[*r] == 1)
        .collect();
    while let Some(r) = todo.pop_front() {
        if hidden_in[r] != 1 {
            continue; // resolved meanwhile by another relation's choice
        }
        let Some(pick) = complement(&relations[r], values, &hidden) else {
            continue; // a relation of one cell gives nothing away
        };
        hidden[pick] = true;
        for &other in &of_cell[pick] {
            hidden_in[other] += 1;
            if hidden_in[other] == 1 {
                todo.push_back(other);
            }
        }
    }
    hidden
}

/// The visible cell of `rel` to hide with its one hidden cell: the smallest non-zero one (a
/// hidden zero protects little where a reader may guess it), the smallest zero when all are;
/// ties go to the first, so that the choice is repeatable.
fn complement(rel: &Relation, values: &[i64], hidden: &[bool]) -> Option<usize> {
    let visible = || rel.cells().filter(|c| !hidden[*c]);
    visible()
        .filter(|c| values[*c] != 0)
        .min_by_key(|c| values[*c])
        .or_else(|| visible().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `rows` x `cols` inner cells with row totals, column totals and a grand total,
    /// laid out row-major with the totals in an extra last column and row.
    fn table(inner: &[Vec<i64>]) -> (Vec<i64>, Vec<Relation>) {
        let rows = inner.len();
        let cols = inner[0].len();
        let w = cols + 1;
        let mut values = vec![0; (rows + 1) * w];
        for (r, row) in inner.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                values[r * w + c] = *v;
                values[r * w + cols] += *v;
                values[rows * w + c] += *v;
                values[rows * w + cols] += *v;
            }
        }
        let mut rels = Vec::new();
        for r in 0..=rows {
            rels.push(Relation {
                total: r * w + cols,
                parts: (0..cols).map(|c| r * w + c).collect(),
            });
        }
        for c in 0..=cols {
            rels.push(Relation {
                total: rows * w + c,
                parts: (0..rows).map(|r| r * w + c).collect(),
            });
        }
        (values, rels)
    }

    /// The attacker: knows every visible value and every relation, and solves any relation left
    /// with one unknown, again and again with what it learnt. Returns the cells it recovered.
    fn attack(values: &[i64], hidden: &[bool], relations: &[Relation]) -> Vec<usize> {
        let mut known: Vec<Option<i64>> = values
            .iter()
            .zip(hidden)
            .map(|(v, h)| (!h).then_some(*v))
            .collect();
        let mut recovered = Vec::new();
        loop {
            let mut progress = false;
            for rel in relations {
                let unknown: Vec<usize> = rel.cells().filter(|c| known[*c].is_none()).collect();
                if let [cell] = unknown[..] {
                    let parts: i64 = rel.parts.iter().filter_map(|p| known[*p]).sum();
                    let value = if cell == rel.total {
                        parts
                    } else {
                        known[rel.total].unwrap_or_default() - parts
                    };
                    assert_eq!(value, values[cell], "the attacker's arithmetic");
                    known[cell] = Some(value);
                    recovered.push(cell);
                    progress = true;
                }
            }
            if !progress {
                return recovered;
            }
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*: enough to draw test tables, and repeatable.
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> i64 {
            i64::try_from(self.next() % n).unwrap_or_default()
        }
    }

    #[test]
    fn counts_of_one_to_ten_are_hidden_and_zero_is_shown() {
        let values = [0, 1, 10, 11, 500];
        let hidden = suppress(&values, &[true; 5], &[]);
        assert_eq!(hidden, [false, true, true, false, false]);
        // Cells that are not counts are left to their caller.
        assert_eq!(suppress(&[3], &[false], &[]), [false]);
    }

    #[test]
    fn a_lone_hidden_cell_takes_the_next_smallest_with_it() {
        // 5 + 40 + 100 = 145: hiding 5 alone would let 145 - 40 - 100 give it back.
        let values = [145, 5, 40, 100];
        let rel = Relation {
            total: 0,
            parts: vec![1, 2, 3],
        };
        let hidden = suppress(&values, &[true; 4], std::slice::from_ref(&rel));
        assert_eq!(hidden, [false, true, true, false]);
        assert!(attack(&values, &hidden, &[rel]).is_empty());
    }

    #[test]
    fn zeros_are_not_taken_as_complements_while_a_non_zero_cell_is_left() {
        let values = [45, 0, 5, 40];
        let rel = Relation {
            total: 0,
            parts: vec![1, 2, 3],
        };
        let hidden = suppress(&values, &[true; 4], &[rel]);
        assert_eq!(hidden, [false, false, true, true]);
    }

    #[test]
    fn a_hidden_total_is_protected_like_a_part() {
        // Parts 3 and 4 (both small) and a total of 7: all three hidden, nothing to recover.
        // With parts 3 and 400, the total 403 must be hidden with 3 or 400 to keep 3 secret.
        let values = [403, 3, 400];
        let rel = Relation {
            total: 0,
            parts: vec![1, 2],
        };
        let hidden = suppress(&values, &[true; 3], std::slice::from_ref(&rel));
        assert_eq!(hidden.iter().filter(|h| **h).count(), 2);
        assert!(attack(&values, &hidden, &[rel]).is_empty());
    }

    #[test]
    fn complements_cascade_across_rows_and_columns_until_stable() {
        // Hiding 4 takes 20 (same row), then its column needs another, and so on.
        let (values, rels) = table(&[vec![4, 20, 300], vec![50, 60, 70], vec![80, 90, 100]]);
        let counts = vec![true; values.len()];
        let hidden = suppress(&values, &counts, &rels);
        for rel in &rels {
            let n = rel.cells().filter(|c| hidden[*c]).count();
            assert_ne!(n, 1, "a relation is left with one hidden cell: {rel:?}");
        }
        assert!(hidden[0]);
        assert!(attack(&values, &hidden, &rels).is_empty());
    }

    #[test]
    fn the_same_input_hides_the_same_cells() {
        let (values, rels) = table(&[vec![4, 20, 7], vec![5, 60, 70], vec![80, 9, 100]]);
        let counts = vec![true; values.len()];
        assert_eq!(
            suppress(&values, &counts, &rels),
            suppress(&values, &counts, &rels)
        );
    }

    #[test]
    fn the_attacker_recovers_nothing_from_random_tables() {
        let mut rng = Rng(0x5EED_CAFE);
        let mut hidden_total = 0;
        let mut primary_only_leaks = 0;
        for _ in 0..400 {
            let rows = 2 + rng.below(5) as usize;
            let cols = 2 + rng.below(5) as usize;
            let inner: Vec<Vec<i64>> = (0..rows)
                .map(|_| {
                    (0..cols)
                        .map(|_| match rng.below(4) {
                            0 => 0,
                            1 => 1 + rng.below(10),
                            _ => rng.below(200),
                        })
                        .collect()
                })
                .collect();
            let (values, rels) = table(&inner);
            let counts = vec![true; values.len()];
            let hidden = suppress(&values, &counts, &rels);
            for (v, h) in values.iter().zip(&hidden) {
                assert!(!is_small(*v) || *h, "a small count is shown");
            }
            assert!(
                attack(&values, &hidden, &rels).is_empty(),
                "recovered a hidden cell of {inner:?}"
            );
            hidden_total += hidden.iter().filter(|h| **h).count();
            // The same attacker against primary suppression alone: it must find something,
            // or this test could not fail.
            let primary: Vec<bool> = values.iter().map(|v| is_small(*v)).collect();
            primary_only_leaks += attack(&values, &primary, &rels).len();
        }
        assert!(hidden_total > 0);
        assert!(primary_only_leaks > 0);
    }
}

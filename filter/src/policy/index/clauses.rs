//! A rule's condition as the per-request check runs it: clauses (a disjunction of
//! conjunctions of atoms), each anchored on a `OneOf` atom where it has one.
//!
//! A library's conditions mostly say "the host is one of these" (and then something of
//! the method or path). When every clause of a rule holds a `OneOf` atom, the rule can
//! apply only if one of those atoms is true, and a request makes only a handful of them
//! true (one hash lookup per field). So the per-request check starts from the atoms that
//! hold and visits only the rules anchored there, plus the few rules without an anchor;
//! a bundle of many teams' modules then costs the rules that can apply, not its size.

use super::analysis::Cond;

/// Conditions beyond this many clauses stay a tree (checked on every request).
const MAX_CLAUSES: usize = 64;

/// How one rule's condition is checked.
#[derive(Debug)]
pub enum Check {
    /// Holds when every atom of one clause is true.
    Clauses(Vec<Box<[u32]>>),
    /// Too many clauses to expand: the condition itself.
    Tree(Cond),
}

impl Check {
    pub fn new(cond: Cond) -> Check {
        match clauses(&cond) {
            Some(c) => Check::Clauses(c.into_iter().map(Vec::into_boxed_slice).collect()),
            None => Check::Tree(cond),
        }
    }

    /// Whether the condition holds, given each atom's truth (an unknown atom holds:
    /// nothing is skipped on what the index does not know).
    pub fn holds(&self, atoms: &[bool]) -> bool {
        match self {
            Check::Clauses(clauses) => {
                clauses.iter().any(|clause| clause.iter().all(|&a| atoms.get(a as usize).copied().unwrap_or(true)))
            }
            Check::Tree(cond) => cond.holds(atoms),
        }
    }

    /// One `OneOf` atom per clause (`is_one_of` says which atoms are), or `None` when a
    /// clause has none — then the rule must be checked for every request.
    pub fn anchors(&self, is_one_of: impl Fn(u32) -> bool) -> Option<Vec<u32>> {
        let Check::Clauses(clauses) = self else { return None };
        let mut out: Vec<u32> = Vec::with_capacity(clauses.len());
        for clause in clauses {
            out.push(*clause.iter().find(|&&a| is_one_of(a))?);
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }
}

/// `cond` in disjunctive normal form, or `None` beyond [`MAX_CLAUSES`] (or an atom id
/// past `u32`). `Always` is the one empty clause.
fn clauses(cond: &Cond) -> Option<Vec<Vec<u32>>> {
    match cond {
        Cond::Always => Some(vec![Vec::new()]),
        Cond::Atom(a) => Some(vec![vec![u32::try_from(*a).ok()?]]),
        Cond::Any(parts) => {
            let mut out = Vec::new();
            for p in parts {
                out.extend(clauses(p)?);
                if out.len() > MAX_CLAUSES {
                    return None;
                }
            }
            Some(out)
        }
        Cond::All(parts) => {
            let mut out = vec![Vec::new()];
            for p in parts {
                let right = clauses(p)?;
                if out.len().saturating_mul(right.len()) > MAX_CLAUSES {
                    return None;
                }
                out = out
                    .iter()
                    .flat_map(|l| {
                        right.iter().map(move |r| {
                            let mut c = l.clone();
                            c.extend_from_slice(r);
                            c.sort_unstable();
                            c.dedup();
                            c
                        })
                    })
                    .collect();
            }
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn all(a: &[usize]) -> Cond {
        Cond::All(a.iter().map(|&i| Cond::Atom(i)).collect())
    }

    #[test]
    fn clauses_expand_and_keep_what_holds() {
        // (0 ∧ 1) ∨ (0 ∧ (2 ∨ 3))
        let c = Cond::Any(vec![
            all(&[0, 1]),
            Cond::All(vec![Cond::Atom(0), Cond::Any(vec![Cond::Atom(2), Cond::Atom(3)])]),
        ]);
        let check = Check::new(c.clone());
        let Check::Clauses(cl) = &check else { panic!("expanded") };
        assert_eq!(cl.len(), 3);
        for bits in 0u32..16 {
            let atoms: Vec<bool> = (0..4).map(|i| bits & (1 << i) != 0).collect();
            assert_eq!(check.holds(&atoms), c.holds(&atoms), "{atoms:?}");
        }
    }

    #[test]
    fn a_rule_is_anchored_only_when_every_clause_has_a_one_of_atom() {
        let one_of = |a: u32| a == 0 || a == 2;
        let anchored = Check::new(Cond::Any(vec![all(&[0, 1]), all(&[3, 2])]));
        assert_eq!(anchored.anchors(one_of), Some(vec![0, 2]));
        let open = Check::new(Cond::Any(vec![all(&[0, 1]), Cond::Atom(3)]));
        assert_eq!(open.anchors(one_of), None);
        assert_eq!(Check::new(Cond::Always).anchors(one_of), None);
    }

    #[test]
    fn too_many_clauses_stay_a_tree() {
        let wide = Cond::Any((0..9).map(Cond::Atom).collect());
        let c = Cond::All(vec![wide.clone(), wide.clone(), wide]);
        let check = Check::new(c.clone());
        assert!(matches!(check, Check::Tree(_)));
        assert_eq!(check.anchors(|_| true), None);
        assert_eq!(check.holds(&[false; 9]), c.holds(&[false; 9]));
    }
}
